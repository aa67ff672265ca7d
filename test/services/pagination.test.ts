import { ErrorCode } from '../../src/errors';
import { decodeCursor, encodeCursor, pageOf, pageSize } from '../../src/services/pagination';

describe('pagination', () => {
  const keys = Array.from({ length: 7 }, (_, i) => `datasets/ds-${i}/dataset.json`);

  it('walks a list page by page with opaque cursors, each item once, in order', () => {
    const seen: string[] = [];
    let after: string | undefined;
    let pages = 0;
    for (;;) {
      const page = pageOf(keys, (k) => k, 3, after);
      pages += 1;
      seen.push(...page.items.map((i) => i.node));
      for (const item of page.items) expect(item.cursor).toMatch(/^[A-Za-z0-9_-]+$/);
      if (!page.hasNextPage) {
        expect(page.endCursor).toBe(page.items.at(-1)?.cursor ?? null);
        break;
      }
      after = decodeCursor(page.endCursor);
    }
    expect(pages).toBe(3);
    expect(seen).toEqual(keys);
  });

  it('gives an empty last page (not the first again) for a cursor whose item is gone', () => {
    const page = pageOf(keys, (k) => k, 3, 'datasets/ds-removed/dataset.json');
    expect(page).toEqual({ items: [], hasNextPage: false, endCursor: null });
  });

  it('round-trips any sort key through a cursor and refuses cursors that are not ours', () => {
    for (const key of ['a', 'predictions/p-1/01J.json', 'ünïcode/ключ']) {
      expect(decodeCursor(encodeCursor(key))).toBe(key);
    }
    expect(decodeCursor(null)).toBeUndefined();
    expect(decodeCursor('')).toBeUndefined();
    for (const bad of ['not a cursor', 'a/b', 'x'.repeat(1025)]) {
      expect(() => decodeCursor(bad)).toThrow(expect.objectContaining({ code: ErrorCode.BAD_USER_INPUT }));
    }
  });

  it('bounds page sizes: the default within the maximum, integers from 1 to the maximum', () => {
    expect(pageSize(null, 100)).toBe(20);
    expect(pageSize(undefined, 10)).toBe(10);
    expect(pageSize(100, 100)).toBe(100);
    for (const bad of [0, -1, 101, 2.5]) {
      expect(() => pageSize(bad, 100)).toThrow(expect.objectContaining({ details: { max: 100 } }));
    }
  });
});
