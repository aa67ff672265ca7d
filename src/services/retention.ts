import { badInput, notFound } from '../errors';
import type { Logger } from '../observability/log';
import type { JsonDocuments } from '../storage/json-documents';
import { layout, safeId } from '../storage/layout';
import type { ObjectStore } from '../storage/object-store';
import type { AuditLog } from './audit';
import type { Caller } from './auth';

/**
 * How long patient data is kept (docs/DATA.md). On AWS the bucket's lifecycle rules enforce it
 * (serverless.yml, the same rules as `retentionRules` below: a test holds them equal); the local S3 has no
 * lifecycle, so `RetentionSweep` applies the same rules with a clock the caller gives.
 *
 * Prediction images and heat maps carry a tag naming their retention class, chosen when they are written:
 * the stage's default (`pixels-stage`) or the partner's own setting (`pixels-7d` ... `pixels-365d`).
 * Records, owner indexes and review markers are selected by prefix alone and kept longer; where a pixel
 * rule and a record rule both match an image, S3 applies the shorter. Images a reviewer adds to a dataset
 * are untagged copies under datasets/: they follow the dataset, not the prediction.
 */

export const RETENTION_TAG = 'lymphoscope-retention';
/** The periods a partner may choose for its images and heat maps, in days. */
export const PARTNER_PIXEL_DAYS = [7, 30, 90, 365] as const;
/** Exports are fetched within the presigned URLs' lifetime; a week is generous. */
export const EXPORT_DAYS = 7;
/** Presigned uploads nobody confirmed (and confirmed ones whose bytes went into a dataset). */
export const UPLOAD_STAGING_DAYS = 7;

export interface RetentionRule {
  /** The lifecycle rule's Id in serverless.yml. */
  id: string;
  prefix: string;
  /** The value of RETENTION_TAG an object must carry; null: every object under the prefix. */
  tag: string | null;
  days: number;
}

export interface RetentionPeriods {
  predictionPixelDays: number;
  predictionRecordDays: number;
}

export function retentionRules(periods: RetentionPeriods): RetentionRule[] {
  return [
    {
      id: 'ExpirePredictionPixels',
      prefix: 'predictions/',
      tag: 'pixels-stage',
      days: periods.predictionPixelDays,
    },
    ...PARTNER_PIXEL_DAYS.map((days) => ({
      id: `ExpirePredictionPixels${days}d`,
      prefix: 'predictions/',
      tag: `pixels-${days}d`,
      days,
    })),
    { id: 'ExpirePredictionRecords', prefix: 'predictions/', tag: null, days: periods.predictionRecordDays },
    {
      id: 'ExpirePredictionOwners',
      prefix: 'prediction-owners/',
      tag: null,
      days: periods.predictionRecordDays,
    },
    { id: 'ExpireReviewMarkers', prefix: 'reviews/pending/', tag: null, days: periods.predictionRecordDays },
    { id: 'ExpireExports', prefix: 'exports/', tag: null, days: EXPORT_DAYS },
    { id: 'ExpireUploadStaging', prefix: 'uploads/', tag: null, days: UPLOAD_STAGING_DAYS },
  ];
}

/**
 * When S3 expires an object: creation time plus the rule's days, rounded up to the next midnight UTC
 * (as the S3 lifecycle documentation states).
 */
export function expiresAt(created: Date, days: number): Date {
  const due = new Date(created.getTime() + days * 86_400_000);
  const midnight = Date.UTC(due.getUTCFullYear(), due.getUTCMonth(), due.getUTCDate());
  return new Date(midnight === due.getTime() ? midnight : midnight + 86_400_000);
}

export interface PartnerRetention {
  partnerId: string;
  /** Null: the stage's default. */
  imageDays: number | null;
  updatedAt: string;
  updatedBy: string;
}

/** The per-partner setting, and the tags a prediction's images get from it. */
export class RetentionPolicy {
  /** A warm Lambda rereads a partner's setting at most once a minute. */
  private readonly cache = new Map<string, { days: number | null; until: number }>();

  constructor(
    private readonly docs: JsonDocuments,
    private readonly audit: AuditLog,
    readonly periods: RetentionPeriods,
  ) {}

  async get(caller: Caller, partnerId: string): Promise<PartnerRetention> {
    safeId(partnerId, 'partnerId');
    if (caller.role !== 'ADMIN' && caller.partnerId !== partnerId) throw notFound('Partner', partnerId);
    const stored = await this.docs.get<PartnerRetention>(layout.partnerRetention(partnerId));
    return (
      stored?.value ?? {
        partnerId,
        imageDays: null,
        updatedAt: new Date(0).toISOString(),
        updatedBy: 'default',
      }
    );
  }

  /** Admin: applies to predictions made from now on (an image keeps the class it was written with). */
  async set(caller: Caller, partnerId: string, imageDays: number | null): Promise<PartnerRetention> {
    safeId(partnerId, 'partnerId');
    if (imageDays !== null && !(PARTNER_PIXEL_DAYS as readonly number[]).includes(imageDays)) {
      throw badInput(
        `imageDays must be one of ${PARTNER_PIXEL_DAYS.join(', ')}, or null for the stage's default.`,
        {
          field: 'imageDays',
        },
      );
    }
    const key = layout.partnerRetention(partnerId);
    const before = (await this.docs.get<PartnerRetention>(key))?.value ?? null;
    const value: PartnerRetention = {
      partnerId,
      imageDays,
      updatedAt: new Date().toISOString(),
      updatedBy: caller.keyId,
    };
    await this.docs.put(key, value);
    this.cache.delete(partnerId);
    await this.audit.record(caller, 'retention.set', partnerId, before && { imageDays: before.imageDays }, {
      imageDays,
    });
    return value;
  }

  /** The tags for a prediction's image and heat map. */
  async pixelTags(partnerId: string): Promise<Record<string, string>> {
    let cached = this.cache.get(partnerId);
    if (!cached || cached.until < Date.now()) {
      const stored = await this.docs.get<PartnerRetention>(layout.partnerRetention(partnerId));
      cached = { days: stored?.value.imageDays ?? null, until: Date.now() + 60_000 };
      this.cache.set(partnerId, cached);
    }
    return { [RETENTION_TAG]: cached.days === null ? 'pixels-stage' : `pixels-${cached.days}d` };
  }
}

/**
 * The local stand-in for S3 lifecycle: applies `retentionRules` at the time `now` (a clock the caller
 * controls), removing every version of each expired object. On AWS the bucket's rules do this, and a
 * deployed stage refuses to run it.
 */
export class RetentionSweep {
  constructor(
    private readonly store: ObjectStore,
    private readonly periods: RetentionPeriods,
    private readonly log: Logger,
  ) {}

  async run(now: Date): Promise<{ expired: number; byRule: Record<string, number> }> {
    const byRule: Record<string, number> = {};
    let expired = 0;
    for (const rule of retentionRules(this.periods)) {
      const objects = await this.store.listAll(rule.prefix, { limit: 1_000_000 });
      for (const o of objects) {
        if (!o.lastModified || expiresAt(o.lastModified, rule.days) > now) continue;
        if (rule.tag !== null && (await this.store.getTags(o.key))?.[RETENTION_TAG] !== rule.tag) continue;
        const versions = (await this.store.listVersions(o.key)).filter((v) => v.key === o.key);
        await this.store.deleteVersions(versions);
        byRule[rule.id] = (byRule[rule.id] ?? 0) + 1;
        expired += 1;
      }
    }
    this.log.info('retention sweep', { now: now.toISOString(), expired, byRule });
    return { expired, byRule };
  }
}
