import type { Resolvers } from '../generated/graphql';
import { decodeCursor, pageSize } from '../services/pagination';
import { badInput } from '../errors';
import { connection } from './connection';

const show = (value: unknown) => (value == null ? null : JSON.stringify(value));

export const accessResolvers: Resolvers = {
  Query: {
    me: async (_r, _a, ctx) => {
      const caller = await ctx.require('PARTNER');
      return (await ctx.services.auth.list()).find((k) => k.id === caller.keyId) ?? null;
    },
    apiKeys: async (_r, _a, ctx) => {
      await ctx.require('ADMIN');
      return ctx.services.auth.list();
    },
    auditLog: async (_r, { day, first, after }, ctx) => {
      await ctx.require('ADMIN');
      const chosen = day ?? new Date().toISOString().slice(0, 10);
      if (!/^\d{4}-\d{2}-\d{2}$/.test(chosen)) throw badInput('day must be YYYY-MM-DD.', { field: 'day' });
      const { audit, config } = ctx.services;
      const page = await audit.list(chosen, pageSize(first, config.limits.pageSize), decodeCursor(after));
      return connection({
        ...page,
        items: page.items.map((i) => ({
          cursor: i.cursor,
          node: { ...i.node, before: show(i.node.before), after: show(i.node.after) },
        })),
      });
    },
  },
  Mutation: {
    createApiKey: async (_r, { input }, ctx) => {
      const caller = await ctx.require('ADMIN');
      const { record, secret } = await ctx.services.auth.create(caller, input.name, input.role);
      return { apiKey: record, secret };
    },
    revokeApiKey: async (_r, { id }, ctx) => {
      const caller = await ctx.require('ADMIN');
      return ctx.services.auth.revoke(caller, id);
    },
  },
};
