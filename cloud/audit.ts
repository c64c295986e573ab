import type { Db } from './db.js';

/**
 * The append-only audit log (triggers in db.ts refuse UPDATE and DELETE). Entries name the
 * actor by API key id ("k-…") or sweeper id ("sweeper-…"), the object by its opaque id, and
 * carry counts and reasons in `detail`: never names, photos, templates or card data.
 */
export interface AuditEntry {
  tenant: string;
  actor: string;
  action: string;
  objectKind: string;
  objectId?: string | null;
  detail?: Record<string, string | number | boolean | null>;
}

export class AuditLog {
  private readonly insert;
  constructor(private readonly db: Db) {
    this.insert = db.prepare('INSERT INTO audit (at, tenant, actor, action, object_kind, object_id, detail) VALUES (?, ?, ?, ?, ?, ?, ?)');
  }

  record(at: number, e: AuditEntry): void {
    this.insert.run(at, e.tenant, e.actor, e.action, e.objectKind, e.objectId ?? null, JSON.stringify(e.detail ?? {}));
  }

  list(tenant: string, opts: { after?: number; limit?: number } = {}) {
    return this.db
      .prepare('SELECT seq, at, actor, action, object_kind AS objectKind, object_id AS objectId, detail FROM audit WHERE tenant = ? AND seq > ? ORDER BY seq LIMIT ?')
      .all(tenant, opts.after ?? 0, Math.min(opts.limit ?? 500, 5000))
      .map((r) => {
        const row = r as { detail: string } & Record<string, unknown>;
        return { ...row, detail: JSON.parse(row.detail) as unknown };
      });
  }
}
