import type { Metrics, Resolvers } from '../generated/graphql';
import type { BinaryMetrics } from '../ml/evaluation/metrics';
import { decodeCursor, pageSize } from '../services/pagination';
import { architectureFromMl, configToGraphql, fusionFromMl } from './enums';
import { connection } from './connection';

/** NaN (e.g. AUC on a one-class split) is not valid JSON: it becomes null. */
const finite = (v: number | null | undefined) => (v == null || !Number.isFinite(v) ? null : v);

export function metricsToGraphql(m: BinaryMetrics | null): Metrics | null {
  if (!m) return null;
  return {
    n: m.n,
    accuracy: m.accuracy,
    balancedAccuracy: m.balancedAccuracy,
    precision: finite(m.precision),
    sensitivity: finite(m.sensitivity),
    specificity: finite(m.specificity),
    f1: finite(m.f1),
    weightedF1: finite(m.weightedF1),
    rocAuc: finite(m.rocAuc),
    prAuc: finite(m.prAuc),
    brier: m.brier,
    ece: m.ece,
    majorityBaselineAccuracy: m.majorityBaselineAccuracy,
    truePositives: m.confusion.tp,
    falsePositives: m.confusion.fp,
    trueNegatives: m.confusion.tn,
    falseNegatives: m.confusion.fn,
    threshold: m.threshold,
  };
}

export const modelResolvers: Resolvers = {
  Query: {
    modelVersions: async (_r, { first, after }, ctx) => {
      await ctx.require('SCIENTIST');
      const { models, config } = ctx.services;
      return connection(await models.list(pageSize(first, config.limits.pageSize), decodeCursor(after)));
    },
    modelVersion: async (_r, { version }, ctx) => {
      await ctx.require('SCIENTIST');
      return ctx.services.models.get(version);
    },
    productionModel: async (_r, _a, ctx) => {
      await ctx.require('PARTNER');
      const version = await ctx.services.models.productionVersion();
      return version ? ctx.services.models.get(version) : null;
    },
    compareModels: async (_r, { a, b }, ctx) => {
      await ctx.require('SCIENTIST');
      return ctx.services.models.compare(a, b);
    },
  },
  Mutation: {
    promoteModel: async (_r, { version, expectedCurrentVersion }, ctx) => {
      const caller = await ctx.require('ADMIN');
      return ctx.services.models.promote(caller, version, expectedCurrentVersion);
    },
  },
  ModelVersion: {
    architecture: (card) => architectureFromMl(card.architecture),
    config: (card) => (card.config ? configToGraphql(card.config) : null),
    testTimeAugmentation: (card) => card.testTimeAugmentation === true,
    fusion: (card) => fusionFromMl(card.fusion ? (card.config?.fusion ?? 'morphology-stack') : 'none'),
    testMetrics: (card) => metricsToGraphql(card.testMetrics),
    validationMetrics: (card) => metricsToGraphql(card.validationMetrics),
    isProduction: async (card, _a, { services }) =>
      (await services.models.productionVersion()) === card.version,
    prCurve: (card) => card.prCurve ?? [],
    charts: async (card, _a, ctx) => {
      await ctx.require('PARTNER');
      const ttl = ctx.services.config.urlTtlSeconds.download;
      const urls = await ctx.services.models.chartUrls(card, ttl);
      return {
        trainingCurvesUrl: urls['training-curves'],
        rocUrl: urls.roc,
        prUrl: urls.pr,
        expiresAt: new Date(Date.now() + ttl * 1000).toISOString(),
      };
    },
    artifacts: async (card, _a, ctx) => {
      await ctx.require('PARTNER');
      return ctx.services.models.artifactUrls(card.version, ctx.services.config.urlTtlSeconds.download);
    },
    calibration: (card) => card.calibration ?? null,
    decisions: (card) => {
      const d = card.decisions;
      if (!d) return null;
      const finite = (v: number) => (Number.isFinite(v) ? v : null);
      const spread = (s: { mean: number; std: number; n: number }) => ({
        mean: finite(s.mean),
        std: finite(s.std),
        n: s.n,
      });
      return {
        rule: d.rule,
        folds: d.folds,
        seeds: d.seeds,
        cells: d.cells,
        blasts: d.blasts,
        eceBefore: finite(d.ece.before),
        eceAfter: finite(d.ece.after),
        guarantee: { ...d.guarantee, caughtOutOfDomain: d.guarantee.caughtOutOfDomain ?? null },
        rocAuc: spread(d.outOfFold.rocAuc),
        flaggedShare: spread(d.outOfFold.flaggedShare),
        reviewRate: spread(d.outOfFold.reviewRate),
        outOfDomainRate: d.outOfFold.outOfDomainRate ? spread(d.outOfFold.outOfDomainRate) : null,
        allOrReviewSensitivity: spread(d.outOfFold.allOrReviewSensitivity),
        sensitivity: spread(d.outOfFold.sensitivity),
        specificity: spread(d.outOfFold.specificity),
        outOfDomainFalseAlarmRate: finite(card.outOfDomainReport?.outOfFoldFalseAlarmRate ?? NaN),
      };
    },
  },
};
