import type { Page } from '../services/pagination';

/** Shapes a service page into a GraphQL cursor connection. */
export const connection = <T>(page: Page<T>) => ({
  edges: page.items,
  pageInfo: { hasNextPage: page.hasNextPage, endCursor: page.endCursor },
});
