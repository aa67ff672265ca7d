import { loadConfig } from '../../src/config';
import { ErrorCode } from '../../src/errors';
import { apiKeyFromHeaders, createRequestContext } from '../../src/resolvers/context';
import { createServices, type Services } from '../../src/services';
import { ANONYMOUS_ADMIN } from '../../src/services/auth';
import { startTestS3, type TestS3 } from '../helpers/s3';

/** The per-request context every resolver gets: who is calling, checked once, and per-request loads. */
describe('createRequestContext', () => {
  let s3: TestS3;
  let services: Services;
  let keyless: Services;
  let scientist: { id: string; secret: string };

  beforeAll(async () => {
    s3 = await startTestS3();
    const env = { LYMPHOSCOPE_STAGE: 'test', LYMPHOSCOPE_BUCKET: s3.bucket, LYMPHOSCOPE_LOG_LEVEL: 'silent' };
    services = createServices(loadConfig(env), { store: s3.store });
    keyless = createServices(loadConfig({ ...env, LYMPHOSCOPE_AUTH: 'disabled' }), { store: s3.store });
    const created = await services.auth.create(ANONYMOUS_ADMIN, 'context test', 'SCIENTIST');
    scientist = { id: created.record.id, secret: created.secret };
  });
  afterAll(() => s3?.stop());
  afterEach(() => jest.restoreAllMocks());

  it('authenticates once per request, however many fields ask, and checks each role asked for', async () => {
    const authenticate = jest.spyOn(services.auth, 'authenticate');
    const context = createRequestContext(services, scientist.secret, 'req-1');
    const callers = await Promise.all([context.require('PARTNER'), context.require('SCIENTIST')]);
    expect(callers).toEqual([
      { keyId: scientist.id, role: 'SCIENTIST', partnerId: scientist.id },
      { keyId: scientist.id, role: 'SCIENTIST', partnerId: scientist.id },
    ]);
    await expect(context.require('ADMIN')).rejects.toMatchObject({ code: ErrorCode.FORBIDDEN });
    expect(authenticate).toHaveBeenCalledTimes(1);
    // The next request authenticates afresh: a key revoked between requests stops working.
    await createRequestContext(services, scientist.secret, 'req-2').require('PARTNER');
    expect(authenticate).toHaveBeenCalledTimes(2);
  });

  it('tells the rate limiter about a wrong key, but not about a request that sent none', async () => {
    const failures: string[] = [];
    const wrong = createRequestContext(services, 'lsk_not_a_key_anyone_has_000000', 'req-3', () =>
      failures.push('wrong'),
    );
    await expect(wrong.require('PARTNER')).rejects.toMatchObject({ code: ErrorCode.UNAUTHENTICATED });
    await expect(wrong.require('PARTNER')).rejects.toMatchObject({ code: ErrorCode.UNAUTHENTICATED });
    expect(failures).toEqual(['wrong']);
    const none = createRequestContext(services, null, 'req-4', () => failures.push('none'));
    await expect(none.require('PARTNER')).rejects.toMatchObject({ code: ErrorCode.UNAUTHENTICATED });
    expect(failures).toEqual(['wrong']);
  });

  it('lets every request in as the anonymous admin only where the configuration disabled keys', async () => {
    const authenticate = jest.spyOn(keyless.auth, 'authenticate');
    expect(await createRequestContext(keyless, null, 'req-5').require('ADMIN')).toBe(ANONYMOUS_ADMIN);
    expect(authenticate).not.toHaveBeenCalled();
    await expect(createRequestContext(services, null, 'req-6').require('PARTNER')).rejects.toMatchObject({
      code: ErrorCode.UNAUTHENTICATED,
    });
  });

  it('runs a load once per key within a request, and never shares it with another request', async () => {
    const context = createRequestContext(services, null, 'req-7');
    let loads = 0;
    const load = async () => ++loads;
    const [a, b] = await Promise.all([context.once('dataset:1', load), context.once('dataset:1', load)]);
    expect([a, b, loads]).toEqual([1, 1, 1]);
    expect(await context.once('dataset:2', load)).toBe(2);
    expect(await createRequestContext(services, null, 'req-8').once('dataset:1', load)).toBe(3);
  });
});

describe('apiKeyFromHeaders', () => {
  it('reads x-api-key or a bearer token, in any case of header name and scheme, trimmed', () => {
    expect(apiKeyFromHeaders({ 'x-api-key': ' lsk_a ' })).toBe('lsk_a');
    expect(apiKeyFromHeaders({ 'X-Api-Key': 'lsk_b' })).toBe('lsk_b');
    expect(apiKeyFromHeaders({ authorization: 'Bearer lsk_c' })).toBe('lsk_c');
    expect(apiKeyFromHeaders({ Authorization: 'bearer   lsk_d ' })).toBe('lsk_d');
  });

  it('finds no key in other schemes, empty headers or none at all', () => {
    expect(apiKeyFromHeaders({})).toBeNull();
    expect(apiKeyFromHeaders({ authorization: 'Basic dXNlcjpwYXNz' })).toBeNull();
    expect(apiKeyFromHeaders({ 'x-api-key': '', authorization: undefined })).toBeNull();
    expect(apiKeyFromHeaders({ 'content-type': 'application/json' })).toBeNull();
  });
});
