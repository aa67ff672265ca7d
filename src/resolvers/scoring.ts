import type { Resolvers } from '../generated/graphql';
import { REVIEW_REASONS } from '../ml/serving/decision';

/**
 * Bulk scoring is staff work: a partner key gets FORBIDDEN, so no partner can point a job at a bucket
 * prefix. A scientist may score a dataset or a folder outside Lymphoscope's own data, the same reach
 * importImages gives (src/services/scoring.ts checks the prefix).
 */
export const scoringResolvers: Resolvers = {
  Query: {
    scoringJob: async (_r, { id }, ctx) => {
      await ctx.require('SCIENTIST');
      return ctx.services.scoring.getAndResumeIfStalled(id);
    },
  },
  Mutation: {
    startScoring: async (_r, { input }, ctx) => {
      const caller = await ctx.require('SCIENTIST');
      return ctx.services.scoring.start(caller, input);
    },
    cancelScoring: async (_r, { id }, ctx) => {
      const caller = await ctx.require('SCIENTIST');
      return ctx.services.scoring.cancel(caller, id);
    },
  },
  ScoringJob: {
    datasetId: (job) => job.source.datasetId,
    prefix: (job) => job.source.prefix,
    completedChunks: (job) => job.completedChunks.length,
    scoredImages: (job, _a, ctx) => ctx.once(`scored:${job.id}`, () => ctx.services.scoring.scoredSoFar(job)),
    progress: async (job, _a, ctx) => {
      if (job.status === 'SUCCEEDED') return 1;
      if (!job.totalImages) return 0;
      const scored = await ctx.once(`scored:${job.id}`, () => ctx.services.scoring.scoredSoFar(job));
      return Math.min(1, scored / job.totalImages);
    },
    results: (job, _a, ctx) =>
      ctx.services.scoring.resultUrls(job, ctx.services.config.urlTtlSeconds.download),
  },
  ScoringSummary: {
    all: (summary) => summary.byLabel.ALL,
    normal: (summary) => summary.byLabel.NORMAL,
    byReason: (summary) => REVIEW_REASONS.map((reason) => ({ reason, count: summary.byReason[reason] ?? 0 })),
  },
};
