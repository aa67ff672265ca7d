import { ErrorCode, LymphoscopeError, badInput } from '../errors';
import type { Resolvers } from '../generated/graphql';
import type { RequestContext } from './context';
import type { PartnerRetention } from '../services/retention';

/** The setting in the API's terms, with the periods that apply on this stage. */
function retentionView(setting: PartnerRetention, ctx: RequestContext) {
  const { periods } = ctx.services.retention;
  return {
    partnerId: setting.partnerId,
    imageDays: setting.imageDays,
    effectiveImageDays: setting.imageDays ?? periods.predictionPixelDays,
    recordDays: periods.predictionRecordDays,
  };
}

/** Deletion, erasure and export of patient data (docs/DATA.md). Thin: authorize, call PatientDataService. */
export const dataResolvers: Resolvers = {
  Query: {
    dataJob: async (_r, { id }, ctx) => {
      const caller = await ctx.require('PARTNER');
      return ctx.services.patientData.jobs.require(caller, id).catch((error: unknown) => {
        if ((error as { code?: string }).code === 'NOT_FOUND') return null;
        throw error;
      });
    },
    partnerRetention: async (_r, { partnerId }, ctx) => {
      const caller = await ctx.require('PARTNER');
      return retentionView(await ctx.services.retention.get(caller, partnerId), ctx);
    },
  },
  Mutation: {
    deletePrediction: async (_r, { id }, ctx) => {
      const caller = await ctx.require('PARTNER');
      return ctx.services.patientData.deletePrediction(caller, id);
    },
    deleteDataset: async (_r, { id, includePinned }, ctx) => {
      const caller = await ctx.require('SCIENTIST');
      return ctx.services.patientData.deleteDataset(caller, id, includePinned === true);
    },
    erasePartnerData: async (_r, { partnerId }, ctx) => {
      const caller = await ctx.require('ADMIN');
      return ctx.services.patientData.erasePartnerData(caller, partnerId);
    },
    exportPartnerData: async (_r, { partnerId, includeImages }, ctx) => {
      const caller = await ctx.require('PARTNER');
      return ctx.services.patientData.exportPartnerData(caller, partnerId, includeImages === true);
    },
    resumeDataJob: async (_r, { id }, ctx) => {
      const caller = await ctx.require('PARTNER');
      return ctx.services.patientData.resume(caller, id);
    },
    setPartnerRetention: async (_r, { partnerId, imageDays }, ctx) => {
      const caller = await ctx.require('ADMIN');
      return retentionView(await ctx.services.retention.set(caller, partnerId, imageDays ?? null), ctx);
    },
    sweepRetention: async (_r, { now }, ctx) => {
      await ctx.require('ADMIN');
      const { stage } = ctx.services.config;
      if (stage !== 'local' && stage !== 'test') {
        throw new LymphoscopeError(
          ErrorCode.FORBIDDEN,
          `The ${stage} stage's bucket enforces retention with S3 lifecycle rules; the sweep is for local stages.`,
        );
      }
      const at = now ? new Date(now) : new Date();
      if (Number.isNaN(at.getTime())) throw badInput('now must be an ISO-8601 time.', { field: 'now' });
      const { expired } = await ctx.services.retentionSweep.run(at);
      return { now: at.toISOString(), expired };
    },
  },
  DataJob: {
    remainingSteps: (job) => job.remaining.length,
    downloads: async (job, _a, { services }) => {
      const { patientData, store, config } = services;
      const keys = await patientData.jobs.exportFiles(job, 1000);
      const folderLength = keys.length ? keys[0].indexOf(job.id) + job.id.length + 1 : 0;
      return Promise.all(
        keys.map(async (key) => {
          const name = key.slice(folderLength);
          return {
            name,
            url: await store.presignGet(key, {
              expiresInSeconds: config.urlTtlSeconds.download,
              contentDisposition: `attachment; filename="${name.split('/').pop()}"`,
            }),
          };
        }),
      );
    },
  },
};
