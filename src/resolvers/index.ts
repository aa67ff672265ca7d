import type { Resolvers } from '../generated/graphql';
import { accessResolvers } from './access';
import { dataResolvers } from './data';
import { datasetResolvers } from './datasets';
import { healthResolvers } from './health';
import { modelResolvers } from './models';
import { predictionResolvers } from './predictions';
import { scoringResolvers } from './scoring';
import { trainingResolvers } from './training';

const domains: Resolvers[] = [
  healthResolvers,
  datasetResolvers,
  trainingResolvers,
  modelResolvers,
  predictionResolvers,
  accessResolvers,
  dataResolvers,
  scoringResolvers,
];

/** Merges the per-domain resolver maps type by type. */
export const resolvers: Resolvers = domains.reduce<Resolvers>((merged, domain) => {
  for (const [typeName, fields] of Object.entries(domain)) {
    const target = merged as Record<string, object>;
    target[typeName] = { ...(target[typeName] ?? {}), ...fields };
  }
  return merged;
}, {});
