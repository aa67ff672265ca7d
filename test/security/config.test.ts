import { loadConfig } from '../../src/config';

describe('configuration that weakens security', () => {
  it('requires keys by default on every stage', () => {
    for (const stage of ['local', 'dev', 'prod'])
      expect(loadConfig({ LYMPHOSCOPE_STAGE: stage }).authRequired).toBe(true);
  });

  it.each(['dev', 'prod', 'staging', 'Local', 'test-eu'])(
    'refuses LYMPHOSCOPE_AUTH=disabled on stage %s',
    (stage) => {
      expect(() => loadConfig({ LYMPHOSCOPE_STAGE: stage, LYMPHOSCOPE_AUTH: 'disabled' })).toThrow(
        /LYMPHOSCOPE_AUTH=disabled is only allowed on the stages local, test/,
      );
    },
  );

  it.each(['local', 'test'])(
    'allows LYMPHOSCOPE_AUTH=disabled on stage %s (resolver tests without keys)',
    (stage) => {
      expect(loadConfig({ LYMPHOSCOPE_STAGE: stage, LYMPHOSCOPE_AUTH: 'disabled' }).authRequired).toBe(false);
    },
  );

  it('refuses an auth mode it does not know instead of guessing', () => {
    expect(() => loadConfig({ LYMPHOSCOPE_AUTH: 'off' })).toThrow(/LYMPHOSCOPE_AUTH/);
  });

  it('turns introspection off in prod unless asked for, and on elsewhere', () => {
    expect(loadConfig({ LYMPHOSCOPE_STAGE: 'prod' }).introspection).toBe(false);
    expect(loadConfig({ LYMPHOSCOPE_STAGE: 'prod', LYMPHOSCOPE_INTROSPECTION: 'on' }).introspection).toBe(
      true,
    );
    expect(loadConfig({ LYMPHOSCOPE_STAGE: 'dev' }).introspection).toBe(true);
    expect(loadConfig({ LYMPHOSCOPE_STAGE: 'dev', LYMPHOSCOPE_INTROSPECTION: 'off' }).introspection).toBe(
      false,
    );
  });

  it.each([
    ['LYMPHOSCOPE_MAX_REQUEST_BYTES', '0'],
    ['LYMPHOSCOPE_MAX_QUERY_DEPTH', '-1'],
    ['LYMPHOSCOPE_MAX_BATCH', 'lots'],
    ['LYMPHOSCOPE_DOWNLOAD_URL_TTL', '1.5'],
  ])('refuses a limit that is not a positive integer: %s=%s', (name, value) => {
    expect(() => loadConfig({ [name]: value })).toThrow(new RegExp(name));
  });

  it('caps presigned URL lifetimes at an hour: a URL is a grant nobody can revoke', () => {
    expect(loadConfig({}).urlTtlSeconds).toEqual({ upload: 900, download: 300 });
    expect(loadConfig({ LYMPHOSCOPE_DOWNLOAD_URL_TTL: '3600' }).urlTtlSeconds.download).toBe(3600);
    expect(() => loadConfig({ LYMPHOSCOPE_DOWNLOAD_URL_TTL: '86400' })).toThrow(
      /LYMPHOSCOPE_DOWNLOAD_URL_TTL/,
    );
    expect(() => loadConfig({ LYMPHOSCOPE_UPLOAD_URL_TTL: '604800' })).toThrow(/LYMPHOSCOPE_UPLOAD_URL_TTL/);
  });
});
