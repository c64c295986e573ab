import { EventEmitter } from 'node:events';
import {
  Command,
  commandNeedsSeal,
  newMessageId,
  parseMessage,
  publicKeyRef,
  sealAndSign,
  type Command as CommandT,
} from '../protocol/index.js';
import type { Clock } from './clock.js';
import type { Db } from './db.js';
import { nextOutSequence } from './sequences.js';
import type { TenantKeys } from './tenant-keys.js';

/**
 * The per-device outbox of commands. Each command is signed with the tenant's admin key
 * (and sealed to the device's X25519 key when it carries templates or photos), stored as the
 * finished envelope, and served to the device's gateway by the long-poll endpoint. Delivery
 * state: queued → fetched (a gateway took it) → delivered (PUBACK reported) → applied /
 * rejected / failed (the device's command-result), or expired / cancelled.
 */
export const COMMAND_TTL_MS = 30 * 86_400_000 - 60_000;

/** Distributes the body of one command (without the per-device fields) to devices. */
type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
export type CommandBody = DistributiveOmit<CommandT, 'commandId' | 'tenant' | 'device' | 'issuedAt' | 'expiresAt'>;

export interface OutboxCommand {
  seq: number;
  commandId: string;
  tenant: string;
  device: string;
  envelope: string;
  expiresAt: number;
}

export class Outbox {
  /** Wakes long-polls when a command is queued for a tenant. */
  readonly queued = new EventEmitter();

  constructor(
    private readonly db: Db,
    private readonly keys: (tenant: string) => TenantKeys,
    private readonly clock: Clock,
  ) {
    this.queued.setMaxListeners(0);
  }

  /** Queues one command to each listed device; returns the command ids. Runs in one transaction. */
  enqueue(tenant: string, devices: string[], body: CommandBody, subject: string | null = null): string[] {
    const keys = this.keys(tenant);
    const now = this.clock.now();
    const ids: string[] = [];
    const insert = this.db.prepare(
      `INSERT INTO commands (command_id, tenant, device, type, subject, envelope, created_at, expires_at, state)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'queued')`,
    );
    const deviceRow = this.db.prepare('SELECT sealing_public AS sealing FROM devices WHERE tenant = ? AND device = ?');
    this.db.transaction(() => {
      for (const device of devices) {
        const commandId = newMessageId();
        const expiresAt = now + COMMAND_TTL_MS;
        const cmd = parseMessage(Command, { ...body, commandId, tenant, device, issuedAt: now, expiresAt }, 'command');
        const row = deviceRow.get(tenant, device) as { sealing: string } | undefined;
        if (!row) throw new Error(`device ${device} is not registered in tenant ${tenant}`);
        const envelope = sealAndSign({
          kind: 'command',
          id: commandId,
          tenant,
          device,
          seq: nextOutSequence(this.db, `command:${tenant}:${device}:${keys.adminSigning.keyId}`),
          body: cmd,
          signer: keys.adminSigning,
          recipient: commandNeedsSeal(cmd) ? publicKeyRef('x25519', row.sealing) : undefined,
          sentAt: now,
          expiresAt,
        });
        insert.run(commandId, tenant, device, cmd.type, subject, envelope, now, expiresAt);
        ids.push(commandId);
      }
    })();
    if (ids.length) this.queued.emit('queued', tenant);
    return ids;
  }

  /** Queues to every device of the tenant (erasure, consent withdrawal, revocations). */
  enqueueAll(tenant: string, body: CommandBody, subject: string | null = null): string[] {
    const devices = this.db.prepare('SELECT device FROM devices WHERE tenant = ? ORDER BY device').pluck().all(tenant) as string[];
    return this.enqueue(tenant, devices, body, subject);
  }

  /** Commands for a gateway's devices after the cursor, not expired and not cancelled. */
  pending(tenant: string, gateway: string, cursor: number, limit = 100): OutboxCommand[] {
    const now = this.clock.now();
    const rows = this.db
      .prepare(
        `SELECT c.seq, c.command_id AS commandId, c.tenant, c.device, c.envelope, c.expires_at AS expiresAt
         FROM commands c JOIN devices d ON d.tenant = c.tenant AND d.device = c.device
         WHERE c.tenant = ? AND d.gateway = ? AND c.seq > ? AND c.envelope IS NOT NULL AND c.expires_at > ?
           AND c.state IN ('queued', 'fetched')
         ORDER BY c.seq LIMIT ?`,
      )
      .all(tenant, gateway, cursor, now, limit) as Array<Omit<OutboxCommand, 'envelope'> & { envelope: Buffer }>;
    if (rows.length) {
      const mark = this.db.prepare("UPDATE commands SET state = 'fetched', fetched_at = ? WHERE seq = ? AND state = 'queued'");
      this.db.transaction(() => rows.forEach((r) => mark.run(now, r.seq)))();
    }
    return rows.map((r) => ({ ...r, envelope: r.envelope.toString('base64') }));
  }

  markDelivered(tenant: string, gateway: string, items: Array<{ commandId: string; at: number }>): number {
    const stmt = this.db.prepare(
      `UPDATE commands SET state = 'delivered', delivered_at = ?
       WHERE command_id = ? AND tenant = ? AND state IN ('queued', 'fetched')
         AND device IN (SELECT device FROM devices WHERE tenant = ? AND gateway = ?)`,
    );
    let n = 0;
    this.db.transaction(() => items.forEach((i) => (n += stmt.run(i.at, i.commandId, tenant, tenant, gateway).changes)))();
    return n;
  }

  /** A device's command-result event; only the command's own device can settle it. */
  recordResult(tenant: string, device: string, commandId: string, outcome: 'applied' | 'rejected' | 'failed', reason: string | null, at: number): void {
    this.db
      .prepare('UPDATE commands SET state = ?, result_at = ?, result_reason = ? WHERE command_id = ? AND tenant = ? AND device = ?')
      .run(outcome, at, reason, commandId, tenant, device);
  }

  /**
   * Erasure and consent withdrawal must not leave personal data waiting: every enroll/update
   * command for the subject (or, with subject null, for the whole tenant at contract end)
   * loses its envelope (the sealed templates and reference photos), whatever its state; only
   * the undelivered ones (queued, fetched) become `cancelled`. Delivered, applied, rejected
   * and failed commands keep their state, so admins still see what really reached a terminal.
   * Returns the number of commands cancelled.
   */
  cancelForSubject(tenant: string, subject: string | null): number {
    const scope = `tenant = ? AND (? IS NULL OR subject = ?) AND type IN ('enroll-subject', 'update-subject')`;
    let cancelled = 0;
    this.db.transaction(() => {
      cancelled = this.db.prepare(`UPDATE commands SET state = 'cancelled' WHERE ${scope} AND state IN ('queued', 'fetched')`).run(tenant, subject, subject).changes;
      this.db.prepare(`UPDATE commands SET envelope = NULL WHERE ${scope} AND envelope IS NOT NULL`).run(tenant, subject, subject);
    })();
    return cancelled;
  }

  list(tenant: string, filter: { device?: string; subject?: string; after?: number; limit?: number } = {}) {
    const now = this.clock.now();
    return this.db
      .prepare(
        `SELECT seq, command_id AS commandId, device, type, subject, created_at AS createdAt, expires_at AS expiresAt,
           CASE WHEN state IN ('queued','fetched') AND expires_at <= ? THEN 'expired' ELSE state END AS state,
           fetched_at AS fetchedAt, delivered_at AS deliveredAt, result_at AS resultAt, result_reason AS resultReason
         FROM commands WHERE tenant = ? AND (? IS NULL OR device = ?) AND (? IS NULL OR subject = ?) AND seq > ?
         ORDER BY seq LIMIT ?`,
      )
      .all(now, tenant, filter.device ?? null, filter.device ?? null, filter.subject ?? null, filter.subject ?? null, filter.after ?? 0, Math.min(filter.limit ?? 500, 5000));
  }
}
