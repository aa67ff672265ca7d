import type { Resolvers } from '../generated/graphql';
import { decodeCursor, pageSize } from '../services/pagination';
import { architectureToMl, balanceToMl, configToGraphql, fusionToMl } from './enums';
import { connection } from './connection';

export const trainingResolvers: Resolvers = {
  Query: {
    trainingJob: async (_r, { id }, ctx) => {
      await ctx.require('SCIENTIST');
      return ctx.services.training.getAndResumeIfStalled(id);
    },
    trainingJobs: async (_r, { status, first, after }, ctx) => {
      await ctx.require('SCIENTIST');
      const { training, config } = ctx.services;
      return connection(
        await training.list(status, pageSize(first, config.limits.pageSize), decodeCursor(after)),
      );
    },
  },
  Mutation: {
    startTraining: async (_r, { input }, ctx) => {
      const caller = await ctx.require('SCIENTIST');
      return ctx.services.training.start(caller, {
        ...input,
        architecture: input.architecture ? architectureToMl(input.architecture) : null,
        classBalance: input.classBalance ? balanceToMl(input.classBalance) : null,
        fusion: input.fusion ? fusionToMl(input.fusion) : null,
      });
    },
    cancelTraining: async (_r, { id }, ctx) => {
      const caller = await ctx.require('SCIENTIST');
      return ctx.services.training.cancel(caller, id);
    },
  },
  TrainingJob: {
    config: (job) => configToGraphql(job.config),
    epochs: (job) => job.config.epochs,
    folds: (job) =>
      (job.units ?? [])
        .filter((u) => u.kind === 'FOLD')
        .map((u) => ({
          seed: u.seed!,
          fold: u.fold!,
          state: u.state,
          epoch: u.epoch,
          epochs: u.epochs,
          attempts: u.attempts,
          error: u.error,
        })),
  },
};
