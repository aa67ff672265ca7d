import { ErrorCode, LymphoscopeError } from '../errors';
import { onnxRuntime } from '../ml/onnx/session';
import { runtimeInfo } from '../ml/runtime-info';
import type { Resolvers } from '../generated/graphql';
import { version } from '../../package.json';

export const healthResolvers: Resolvers = {
  Query: {
    // Unauthenticated on purpose: load balancers and uptime checks call it. It reveals no data.
    health: async (_root, _args, { services }) => {
      // The production alias is read anyway, and a GET that answers (the alias found or not) proves the
      // bucket reachable: no HeadBucket, which costs about 120 ms against the local S3 server (a GET 4 ms),
      // on every poll. Only a storage failure (UNAVAILABLE) is "degraded"; any other failure to read the
      // alias leaves the version unknown, as before.
      let storageReachable = true;
      let productionModelVersion: string | null = null;
      try {
        productionModelVersion = await services.models.productionVersion();
      } catch (error) {
        if (error instanceof LymphoscopeError && error.code === ErrorCode.UNAVAILABLE)
          storageReachable = false;
      }
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
