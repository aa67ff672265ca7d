import { badInput } from '../errors';

/** A page of a cursor connection, before GraphQL shapes it into edges. */
export interface Page<T> {
  items: Array<{ cursor: string; node: T }>;
  hasNextPage: boolean;
  endCursor: string | null;
}

/**
 * Cursors are opaque to clients (base64url of the last item's sort key) so the key layout can change
 * without breaking a client that stored one.
 */
export const encodeCursor = (sortKey: string) => Buffer.from(sortKey, 'utf8').toString('base64url');

export function decodeCursor(cursor: string | null | undefined): string | undefined {
  if (cursor == null || cursor === '') return undefined;
  if (cursor.length > 1024 || !/^[A-Za-z0-9_-]+$/.test(cursor))
    throw badInput('The `after` cursor is not valid.');
  return Buffer.from(cursor, 'base64url').toString('utf8');
}

export function pageSize(first: number | null | undefined, max: number, fallback = 20): number {
  if (first == null) return Math.min(fallback, max);
  if (!Number.isInteger(first) || first < 1 || first > max) {
    throw badInput(`\`first\` must be an integer from 1 to ${max}.`, { max });
  }
  return first;
}

/** Pages an in-memory list already in its final order, by a sort key per item. */
export function pageOf<T>(all: T[], sortKey: (t: T) => string, first: number, after?: string): Page<T> {
  let start = 0;
  if (after !== undefined) {
    const index = all.findIndex((t) => sortKey(t) === after);
    start = index >= 0 ? index + 1 : all.length;
  }
  const slice = all.slice(start, start + first);
  const items = slice.map((node) => ({ cursor: encodeCursor(sortKey(node)), node }));
  return {
    items,
    hasNextPage: start + first < all.length,
    endCursor: items.length ? items[items.length - 1].cursor : null,
  };
}
