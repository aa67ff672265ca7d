import { createHmac, randomBytes } from 'node:crypto';
import { badInput } from '../errors';
import { validateSubjectId } from './labels';

/** What a pseudonym looks like: `s-` and 32 hex digits (128 bits of an HMAC-SHA256). */
export const PSEUDONYM = /^s-[0-9a-f]{32}$/;

/**
 * Subject ids (patient or donor ids) are replaced at the door by a keyed hash: HMAC-SHA256 under a key
 * per deployment, so the same subject always gets the same pseudonym (subject-grouped splits still
 * work) while nobody without the key can recompute it from a guessed record number, and two
 * deployments give unrelated pseudonyms. Nothing downstream (object keys, metadata, snapshots, logs)
 * ever sees the id as given. A value that already is a pseudonym passes unchanged, so an id read back
 * from the API can be sent again.
 */
export class Pseudonyms {
  private constructor(
    private readonly key: Buffer | null,
    /** True when the key was made up for this process only (tests that build services by hand). */
    readonly ephemeral: boolean,
  ) {}

  /** From configuration; null: this deployment has no key and refuses subject ids. */
  static fromKey(key: string | null): Pseudonyms {
    return new Pseudonyms(key === null ? null : Buffer.from(key, 'utf8'), false);
  }

  /** A random key for this process: pseudonyms change after a restart. Only where nothing persists. */
  static ephemeral(): Pseudonyms {
    return new Pseudonyms(randomBytes(32), true);
  }

  /**
   * The pseudonym of a subject id as a client sent it (validated first), or null when none was given.
   * BAD_USER_INPUT where the deployment has no key: storing the id as given is never the fallback.
   */
  subject(raw: string | null | undefined): string | null {
    const subjectId = validateSubjectId(raw);
    if (subjectId === null) return null;
    if (PSEUDONYM.test(subjectId)) return subjectId;
    if (!this.key) {
      throw badInput(
        'This deployment has no pseudonym key (LYMPHOSCOPE_PSEUDONYM_KEY), so it cannot accept subject ids; ' +
          'leave subjectId out or ask the operator to configure one (docs/DATA.md).',
        { field: 'subjectId' },
      );
    }
    return (
      's-' + createHmac('sha256', this.key).update(`subject:${subjectId}`, 'utf8').digest('hex').slice(0, 32)
    );
  }
}
