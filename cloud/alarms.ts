import type { AuditLog } from './audit.js';
import type { Db } from './db.js';

/**
 * Alarms an admin must see and acknowledge: something happened that nobody asked for and that
 * no sweep or retry will set right (an event whose bytes its device did not sign, a door forced
 * open). This module owns the `admin_alarms` table; every raise and acknowledgement is audited,
 * and `onRaised` lets the process log and count it (cloud/main.ts). Like the audit log, an
 * alarm names the device and objects by opaque id and carries codes, never payloads or names.
 */
export interface AlarmInput {
  tenant: string;
  /** What happened, a stable code: "event.tampered", "event.forged", "device.door-forced-open", … */
  kind: string;
  device?: string | null;
  /** The object concerned (an event id), if any. */
  objectId?: string | null;
  detail?: Record<string, string | number | boolean | null>;
}

export interface Alarm {
  id: number;
  kind: string;
  device: string | null;
  objectId: string | null;
  detail: Record<string, unknown>;
  raisedAt: number;
  acknowledgedAt: number | null;
  acknowledgedBy: string | null;
}

export type AlarmState = 'open' | 'acknowledged' | 'all';

export class Alarms {
  /** Called after each alarm is recorded (logs, metrics). */
  onRaised: (alarm: Alarm & { tenant: string }) => void = () => {};
  private readonly insert;

  constructor(
    private readonly db: Db,
    private readonly audit: AuditLog,
  ) {
    this.insert = db.prepare('INSERT INTO admin_alarms (tenant, kind, device, object_id, detail, raised_at) VALUES (?, ?, ?, ?, ?, ?)');
  }

  /** Records an alarm and its audit entry in one transaction; `actor` is who noticed it (e.g. "ingest:gw-1"). */
  raise(at: number, actor: string, a: AlarmInput): Alarm {
    const detail = a.detail ?? {};
    const id = this.db.transaction(() => {
      const id = Number(this.insert.run(a.tenant, a.kind, a.device ?? null, a.objectId ?? null, JSON.stringify(detail), at).lastInsertRowid);
      this.audit.record(at, { tenant: a.tenant, actor, action: 'alarm.raised', objectKind: 'alarm', objectId: String(id), detail: { kind: a.kind, device: a.device ?? null, objectId: a.objectId ?? null } });
      return id;
    })();
    const alarm: Alarm = { id, kind: a.kind, device: a.device ?? null, objectId: a.objectId ?? null, detail, raisedAt: at, acknowledgedAt: null, acknowledgedBy: null };
    this.onRaised({ ...alarm, tenant: a.tenant });
    return alarm;
  }

  list(tenant: string, opts: { state?: AlarmState; after?: number; limit?: number } = {}): Alarm[] {
    const state = opts.state ?? 'open';
    return (
      this.db
        .prepare(
          `SELECT id, kind, device, object_id AS objectId, detail, raised_at AS raisedAt, acknowledged_at AS acknowledgedAt, acknowledged_by AS acknowledgedBy
           FROM admin_alarms WHERE tenant = ? AND id > ?
             AND (? = 'all' OR (? = 'open') = (acknowledged_at IS NULL))
           ORDER BY id LIMIT ?`,
        )
        .all(tenant, opts.after ?? 0, state, state, Math.min(opts.limit ?? 500, 5000)) as Array<Omit<Alarm, 'detail'> & { detail: string }>
    ).map((r) => ({ ...r, detail: JSON.parse(r.detail) as Record<string, unknown> }));
  }

  openCount(tenant?: string): number {
    return (tenant === undefined
      ? this.db.prepare('SELECT COUNT(*) FROM admin_alarms WHERE acknowledged_at IS NULL').pluck().get()
      : this.db.prepare('SELECT COUNT(*) FROM admin_alarms WHERE tenant = ? AND acknowledged_at IS NULL').pluck().get(tenant)) as number;
  }

  /** Marks an open alarm seen; 'unknown' for no such alarm in the tenant, 'already' if it was acknowledged before. */
  acknowledge(tenant: string, id: number, actor: string, at: number): 'acknowledged' | 'already' | 'unknown' {
    return this.db.transaction(() => {
      const row = this.db.prepare('SELECT acknowledged_at AS ackAt FROM admin_alarms WHERE tenant = ? AND id = ?').get(tenant, id) as { ackAt: number | null } | undefined;
      if (!row) return 'unknown';
      if (row.ackAt !== null) return 'already';
      this.db.prepare('UPDATE admin_alarms SET acknowledged_at = ?, acknowledged_by = ? WHERE tenant = ? AND id = ?').run(at, actor, tenant, id);
      this.audit.record(at, { tenant, actor, action: 'alarm.acknowledged', objectKind: 'alarm', objectId: String(id) });
      return 'acknowledged';
    })();
  }
}
