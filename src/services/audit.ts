import { ulid } from 'ulid';
import { layout } from '../storage/layout';
import type { JsonDocuments } from '../storage/json-documents';
import type { ObjectStore } from '../storage/object-store';
import type { Caller } from './caller';
import { pageOf, type Page } from './pagination';

/**
 * `applied`: the action took effect. `pending`: written before the action, whose process stopped
 * before it could say (the record the action wrote names this audit id when it did take effect).
 * Records written before outcomes existed have none (applied). A refused action leaves no record.
 */
export type AuditOutcome = 'pending' | 'applied';

export interface AuditRecord {
  id: string;
  at: string;
  actor: string;
  action: string;
  target: string;
  before: unknown;
  after: unknown;
  outcome?: AuditOutcome;
}

/**
 * Who did what, when, with the state before and after: one object per event. An action that must
 * never go unaudited runs inside `audited`: the record is written first (pending), the action second,
 * the outcome last, so a crash or a lost answer anywhere leaves at worst a pending record, never an
 * action without one.
 */
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

  /**
   * Audit-first: writes the record as pending, runs `action` with its id (to store beside the change,
   * so a pending record can be matched with its effect), then marks it applied; when `action` throws,
   * the record is removed (a refused action leaves none, as before) and the error rethrown. Neither
   * step fails the action: if it cannot be written, the record stays pending.
   */
  async audited<T>(
    caller: Caller,
    entry: { action: string; target: string; before: unknown; after: unknown },
    action: (auditId: string) => Promise<T>,
  ): Promise<T> {
    const at = new Date();
    const key = (record: AuditRecord) => layout.audit(new Date(record.at), record.id);
    const pending: AuditRecord = {
      id: ulid(at.getTime()).toLowerCase(),
      at: at.toISOString(),
      actor: `${caller.keyId} (${caller.role.toLowerCase()})`,
      action: entry.action,
      target: entry.target,
      before: entry.before ?? null,
      after: entry.after ?? null,
      outcome: 'pending',
    };
    const etag = await this.docs.create(key(pending), pending);
    let result: T;
    try {
      result = await action(pending.id);
    } catch (error) {
      await this.store.delete(key(pending)).catch(() => undefined);
      throw error;
    }
    const applied: AuditRecord = { ...pending, outcome: 'applied' };
    await this.docs.replace(key(pending), applied, etag).catch(() => undefined);
    return result;
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
