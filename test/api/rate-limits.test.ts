import { CallerLimiter } from '../../src/api/rate-limits';
import { ErrorCode, LymphoscopeError } from '../../src/errors';

const SETTINGS = {
  inFlight: 2,
  keyRatePerMinute: 60,
  keyBurst: 3,
  anonymousRatePerMinute: 30,
  anonymousBurst: 2,
};

function refused(run: () => unknown): LymphoscopeError {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(LymphoscopeError);
    expect((error as LymphoscopeError).code).toBe(ErrorCode.RATE_LIMITED);
    return error as LymphoscopeError;
  }
  throw new Error('expected RATE_LIMITED');
}

describe('CallerLimiter', () => {
  let now = 0;
  const clock = () => now;
  beforeEach(() => {
    now = 1_000_000;
  });

  it('lets a key burst, refuses the next request with a retry hint, and refills at its rate', () => {
    const limiter = new CallerLimiter(SETTINGS, clock);
    const a = { apiKey: 'lsk_key_a', sourceIp: '10.0.0.1' };
    for (let i = 0; i < 3; i++) limiter.admit(a)();
    const error = refused(() => limiter.admit(a));
    expect(error.details).toEqual({
      limit: 60,
      limitName: 'LYMPHOSCOPE_KEY_RATE_PER_MINUTE',
      retryAfterSeconds: 1,
    });
    expect(error.message).toMatch(/limit is 60 per minute, in bursts of up to 3. Retry in 1 s/);
    // Another key from the same address is not affected.
    limiter.admit({ apiKey: 'lsk_key_b', sourceIp: '10.0.0.1' })();
    now += 1000; // one token back
    limiter.admit(a)();
    refused(() => limiter.admit(a));
  });

  it('bounds requests in flight per key and frees the slot when one ends', () => {
    const limiter = new CallerLimiter({ ...SETTINGS, keyBurst: 100 }, clock);
    const a = { apiKey: 'lsk_key_a', sourceIp: '10.0.0.1' };
    const first = limiter.admit(a);
    const second = limiter.admit(a);
    const error = refused(() => limiter.admit(a));
    expect(error.details).toMatchObject({ limit: 2, limitName: 'LYMPHOSCOPE_MAX_IN_FLIGHT' });
    first();
    first(); // ending twice frees one slot, not two
    const third = limiter.admit(a);
    refused(() => limiter.admit(a));
    second();
    third();
  });

  it('limits callers without a key per address, and charges failed authentications to the address', () => {
    const limiter = new CallerLimiter(SETTINGS, clock);
    limiter.admit({ apiKey: null, sourceIp: '10.0.0.1' })();
    limiter.admit({ apiKey: null, sourceIp: '10.0.0.1' })();
    expect(refused(() => limiter.admit({ apiKey: null, sourceIp: '10.0.0.1' })).details).toMatchObject({
      limitName: 'LYMPHOSCOPE_ANONYMOUS_RATE_PER_MINUTE',
      retryAfterSeconds: 2,
    });
    limiter.admit({ apiKey: null, sourceIp: '10.0.0.2' })();

    // Guessing keys: each guess is a fresh key, but the failures add up per address.
    for (let i = 0; i < 2; i++) {
      limiter.admit({ apiKey: `lsk_guess_${i}`, sourceIp: '10.0.0.3' })();
      limiter.authenticationFailed('10.0.0.3');
    }
    const error = refused(() => limiter.admit({ apiKey: 'lsk_guess_9', sourceIp: '10.0.0.3' }));
    expect(error.message).toMatch(/from this address after failed authentications/);
    now += 2000;
    limiter.admit({ apiKey: 'lsk_guess_10', sourceIp: '10.0.0.3' })();
  });

  it('keeps memory bounded under a flood from many addresses', () => {
    const limiter = new CallerLimiter(SETTINGS, clock);
    for (let i = 0; i < 25_000; i++) {
      limiter.admit({ apiKey: null, sourceIp: `fd00::${i.toString(16)}` })();
    }
    expect(limiter.tracked).toBeLessThanOrEqual(10_000);
  });
});
