import type { Resolvers } from '../generated/graphql';
import { decodeBase64 } from '../services/image-limits';
import { pageSize, decodeCursor } from '../services/pagination';
import { connection } from './connection';
import type { RequestContext } from './context';

/** A dataset's counts come from one listing per request, however many count fields are asked for. */
const imageRefs = (ctx: RequestContext, datasetId: string) =>
  ctx.once(`imageRefs:${datasetId}`, () => ctx.services.datasets.imageRefs(datasetId));

export const datasetResolvers: Resolvers = {
  Query: {
    dataset: async (_r, { id }, ctx) => {
      await ctx.require('SCIENTIST');
      return ctx.services.datasets.get(id);
    },
    datasets: async (_r, { first, after }, ctx) => {
      await ctx.require('SCIENTIST');
      const { datasets, config } = ctx.services;
      return connection(await datasets.list(pageSize(first, config.limits.pageSize), decodeCursor(after)));
    },
  },
  Mutation: {
    createDataset: async (_r, { input }, ctx) => {
      const caller = await ctx.require('SCIENTIST');
      return ctx.services.datasets.create(caller, input.name, input.description);
    },
    addImage: async (_r, { input }, ctx) => {
      const caller = await ctx.require('SCIENTIST');
      const { datasets } = ctx.services;
      return datasets.addImageBytes(caller, {
        datasetId: input.datasetId,
        label: input.label,
        bytes: decodeBase64(input.imageBase64, ctx.services.config.limits),
        filename: input.filename,
        subjectId: input.subjectId,
        source: 'inline',
      });
    },
    createImageUpload: async (_r, { input }, ctx) => {
      const caller = await ctx.require(input.datasetId ? 'SCIENTIST' : 'PARTNER');
      const { datasets, config } = ctx.services;
      const { upload, url, fields } = await datasets.createUpload(caller, input, config.urlTtlSeconds.upload);
      return {
        uploadId: upload.uploadId,
        url,
        method: 'POST',
        fields: Object.entries(fields).map(([name, value]) => ({ name, value })),
        headers: [],
        expiresAt: upload.expiresAt,
        maxBytes: config.limits.uploadBytes,
      };
    },
    confirmImageUpload: async (_r, { uploadId }, ctx) => {
      const caller = await ctx.require('PARTNER');
      return ctx.services.datasets.confirmUpload(caller, uploadId);
    },
    importImages: async (_r, { input }, ctx) => {
      const caller = await ctx.require('SCIENTIST');
      return ctx.services.folderImport.run(caller, input.datasetId, input.s3Prefix);
    },
    removeImage: async (_r, { datasetId, imageId }, ctx) => {
      const caller = await ctx.require('SCIENTIST');
      return ctx.services.datasets.removeImage(caller, datasetId, imageId);
    },
  },
  Dataset: {
    imageCount: async (d, _a, ctx) => (await imageRefs(ctx, d.id)).length,
    labelCounts: async (d, _a, ctx) => {
      const refs = await imageRefs(ctx, d.id);
      return (['ALL', 'NORMAL'] as const).map((label) => ({
        label,
        count: refs.filter((r) => r.label === label).length,
      }));
    },
    subjectCounts: async (d, _a, ctx) => {
      const counts = new Map<string, { subjectId: string; label: 'ALL' | 'NORMAL'; count: number }>();
      for (const r of await imageRefs(ctx, d.id)) {
        const subjectId = r.subjectId ?? '(none)';
        const key = `${subjectId}\n${r.label}`;
        const entry = counts.get(key) ?? { subjectId, label: r.label, count: 0 };
        entry.count += 1;
        counts.set(key, entry);
      }
      return [...counts.values()].sort(
        (a, b) => a.subjectId.localeCompare(b.subjectId) || a.label.localeCompare(b.label),
      );
    },
    images: async (d, { first, after }, { services }) =>
      connection(
        await services.datasets.listImages(
          d.id,
          pageSize(first, services.config.limits.pageSize),
          decodeCursor(after),
        ),
      ),
  },
};
