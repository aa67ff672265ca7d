import { ulid } from 'ulid';
import { layout } from '../storage/layout';
import type { JsonDocuments } from '../storage/json-documents';
import type { ObjectStore } from '../storage/object-store';
import type { Caller } from './auth';
import { pageOf, type Page } from './pagination';

export interface AuditRecord {
  id: string;
  at: string;
  actor: string;
  action: string;
  target: string;
  before: unknown;
  after: unknown;
}

/** Who did what, when, with the state before and after: one immutable object per event. */
export class AuditLog {
  constructor(
    private readonly store: ObjectStore,
    private readonly docs: JsonDocuments,
  ) {}

  async record(
    caller: Caller,
    action: string,
    target: string,
    before: unknown,
    after: unknown,
  ): Promise<AuditRecord> {
    const at = new Date();
    const record: AuditRecord = {
      id: ulid(at.getTime()).toLowerCase(),
      at: at.toISOString(),
      actor: `${caller.keyId} (${caller.role.toLowerCase()})`,
      action,
      target,
      before: before ?? null,
      after: after ?? null,
    };
    await this.docs.create(layout.audit(at, record.id), record);
    return record;
  }

  /** day is YYYY-MM-DD (UTC). */
  async list(day: string, first: number, after?: string): Promise<Page<AuditRecord>> {
    const keys = await this.store.listAll(layout.auditPrefix(day), { limit: 100_000 });
    const page = pageOf(keys.map((k) => k.key).sort(), (k) => k, first, after);
    const records = await Promise.all(
      page.items.map(async (i) => (await this.docs.get<AuditRecord>(i.node))!.value),
    );
    return { ...page, items: page.items.map((i, n) => ({ cursor: i.cursor, node: records[n] })) };
  }
}
