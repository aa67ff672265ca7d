import { onnxRuntime } from '../ml/onnx';
import { runtimeInfo } from '../ml/runtime';
import type { Resolvers } from '../generated/graphql';
import { version } from '../../package.json';

export const healthResolvers: Resolvers = {
  Query: {
    // Unauthenticated on purpose: load balancers and uptime checks call it. It reveals no data.
    health: async (_root, _args, { services }) => {
      const storageReachable = await services.store.ping();
      const productionModelVersion = storageReachable
        ? await services.models.productionVersion().catch(() => null)
        : null;
      return {
        status: storageReachable ? 'ok' : 'degraded',
        version,
        stage: services.config.stage,
        // What computes predictions: onnxruntime wherever it loads (models.ts serves every version with
        // an ONNX twin through it), else the TF.js backend.
        mlBackend: onnxRuntime() ? 'onnxruntime' : (runtimeInfo()?.backend ?? 'not loaded'),
        tfjsBackend: runtimeInfo()?.backend ?? 'not loaded',
        storageReachable,
        productionModelVersion,
      };
    },
  },
};
