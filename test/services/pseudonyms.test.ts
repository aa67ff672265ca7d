import { ErrorCode } from '../../src/errors';
import { PSEUDONYM, Pseudonyms } from '../../src/services/pseudonyms';

describe('Pseudonyms', () => {
  const deployment = Pseudonyms.fromKey('a deployment key of enough length 0123456789');

  it('gives one subject the same pseudonym every time, and never the id as sent', () => {
    const first = deployment.subject('patient-4711');
    expect(first).toMatch(PSEUDONYM);
    expect(first).not.toContain('4711');
    expect(Pseudonyms.fromKey('a deployment key of enough length 0123456789').subject('patient-4711')).toBe(
      first,
    );
    expect(deployment.subject('patient-4712')).not.toBe(first);
  });

  it('gives unrelated pseudonyms under another key, so deployments cannot be joined', () => {
    const other = Pseudonyms.fromKey('another deployment key 9876543210');
    expect(other.subject('patient-4711')).not.toBe(deployment.subject('patient-4711'));
  });

  it('passes a pseudonym read back from the API unchanged, and no subject as null', () => {
    const pseudonym = deployment.subject('patient-4711')!;
    expect(deployment.subject(pseudonym)).toBe(pseudonym);
    expect(deployment.subject(null)).toBeNull();
    expect(deployment.subject('')).toBeNull();
  });

  it('refuses subject ids outright where the deployment has no key, and malformed ids anywhere', () => {
    expect(() => Pseudonyms.fromKey(null).subject('patient-4711')).toThrow(
      expect.objectContaining({ code: ErrorCode.BAD_USER_INPUT, details: { field: 'subjectId' } }),
    );
    expect(Pseudonyms.fromKey(null).subject(null)).toBeNull();
    for (const bad of ['-leading-dash', 'has space', 'x'.repeat(65), 'a/b']) {
      expect(() => deployment.subject(bad)).toThrow(
        expect.objectContaining({ code: ErrorCode.BAD_USER_INPUT }),
      );
    }
  });
});
