import type { Resolvers } from '../generated/graphql';
import { decodeCursor, pageSize } from '../services/pagination';
import { reviewReasonsOf } from '../services/predictions';
import { connection } from './connection';

export const predictionResolvers: Resolvers = {
  Query: {
    prediction: async (_r, { id }, ctx) => {
      const caller = await ctx.require('PARTNER');
      // require, not get: another partner's id and an id that never existed give the same NOT_FOUND.
      return ctx.services.predictions.require(caller, id);
    },
    predictions: async (_r, { first, after, needsReview, modelVersion }, ctx) => {
      const caller = await ctx.require('PARTNER');
      const { predictions, config } = ctx.services;
      return connection(
        await predictions.list(
          caller,
          { needsReview, modelVersion },
          pageSize(first, config.limits.pageSize),
          decodeCursor(after),
        ),
      );
    },
    reviewQueue: async (_r, { first, after, reason }, ctx) => {
      const caller = await ctx.require('SCIENTIST');
      const { predictions, config } = ctx.services;
      return connection(
        await predictions.reviewQueue(
          caller,
          pageSize(first, config.limits.pageSize),
          decodeCursor(after),
          reason,
        ),
      );
    },
  },
  Mutation: {
    predict: async (_r, { input }, ctx) => {
      const caller = await ctx.require('PARTNER');
      return ctx.services.predictions.predict(caller, input);
    },
    predictBatch: async (_r, { inputs }, ctx) => {
      const caller = await ctx.require('PARTNER');
      return ctx.services.predictions.predictBatch(caller, inputs);
    },
    submitReview: async (_r, { input }, ctx) => {
      const caller = await ctx.require('SCIENTIST');
      return ctx.services.reviews.submit(caller, input);
    },
  },
  Prediction: {
    reviewReasons: (p) => reviewReasonsOf(p),
    outOfDomainScore: (p) => p.outOfDomainScore ?? null,
    heatmapUrl: (p, _a, { services }) =>
      services.predictions.presignedUrl(p.heatmapKey, services.config.urlTtlSeconds.download),
    imageUrl: (p, _a, { services }) =>
      services.predictions.presignedUrl(p.imageKey, services.config.urlTtlSeconds.download),
  },
};
