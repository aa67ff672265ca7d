import type { Resolvers } from '../generated/graphql';

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
