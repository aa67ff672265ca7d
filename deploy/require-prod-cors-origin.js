'use strict';

/**
 * A local Serverless Framework plugin: refuses to package (and so to deploy) stage prod while its
 * browser origin is not named. serverless.yml resolves every stage's params whatever the stage, so a
 * required ${env:...} there would break every other stage; prod falls back to an unusable
 * placeholder origin instead, and this check turns that into a clear error.
 */
const PLACEHOLDER = 'https://set-LYMPHOSCOPE_CORS_ORIGIN.invalid';

class RequireProdCorsOrigin {
  constructor(serverless) {
    this.hooks = {
      'before:package:initialize': () => {
        const stage = serverless.service.provider.stage;
        const origins = serverless.service.provider.httpApi?.cors?.allowedOrigins ?? [];
        if (stage === 'prod' && origins.some((o) => o === '*' || o === PLACEHOLDER)) {
          throw new serverless.classes.Error(
            'Stage prod needs its browser origin: LYMPHOSCOPE_CORS_ORIGIN=https://console.example.org ' +
              'npx serverless deploy --stage prod (docs/DEPLOYMENT.md). It is never "*" in prod.',
          );
        }
      },
    };
  }
}

module.exports = RequireProdCorsOrigin;
