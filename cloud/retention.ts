import { randomBytes } from 'node:crypto';
import type { Logger } from '../common/log.js';
import { DAY_MS } from './clock.js';
import { checkpointWal } from './db.js';
import type { CloudService } from './service.js';
import { getSettings } from './settings.js';

/**
 * The retention sweeper. Per tenant it deletes: punch photos older than the photo retention;
 * a leaver's photos (punch and reference) and templates once the leaver delay has passed;
 * punch records older than the punch retention; and at contract end every photo, reference
 * photo and template, then the tenant's vault key.
 *
 * Batched and restartable: each batch first claims rows with an atomic UPDATE (a lease with
 * this sweeper's id and an expiry), removes the files, then deletes the rows and writes the
 * audit entries in one transaction. Two sweepers (processes on the host of the database) never
 * claim the same row; a sweeper that dies mid-batch leaves a lease that simply runs out.
 */
export interface SweepResult {
  photos: number;
  /** Subjects whose records were erased (contract end), each with an erase queued to every terminal. */
  subjects: number;
  punches: number;
  templates: number;
  keysDestroyed: number;
}

export interface SweeperOptions {
  batchSize?: number;
  leaseMs?: number;
  log?: Logger;
  /** Identifies this sweeper in leases (host + random). */
  id?: string;
}

type PhotoScope = { reason: string; where: string; args: unknown[] };

export class Sweeper {
  readonly id: string;
  private readonly batchSize: number;
  private readonly leaseMs: number;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<SweepResult> | undefined;
  onSwept: (photos: number) => void = () => {};

  constructor(private readonly s: CloudService, private readonly opts: SweeperOptions = {}) {
    this.id = opts.id ?? `sweeper-${randomBytes(6).toString('hex')}`;
    this.batchSize = opts.batchSize ?? 5000;
    this.leaseMs = opts.leaseMs ?? 5 * 60_000;
  }

  start(everyMs: number): void {
    const tick = () => {
      this.sweepAll().catch((err: unknown) => this.opts.log?.error({ err }, 'retention sweep failed'));
    };
    this.timer = setInterval(tick, everyMs);
    this.timer.unref();
    tick();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** One full pass over every tenant; concurrent calls share the pass in progress. */
  sweepAll(): Promise<SweepResult> {
    this.running ??= this.pass().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async pass(): Promise<SweepResult> {
    const total: SweepResult = { photos: 0, subjects: 0, punches: 0, templates: 0, keysDestroyed: 0 };
    const tenants = this.s.db.prepare('SELECT id FROM tenants ORDER BY id').pluck().all() as string[];
    for (const tenant of tenants) {
      const r = await this.sweepTenant(tenant);
      total.photos += r.photos;
      total.subjects += r.subjects;
      total.punches += r.punches;
      total.templates += r.templates;
      total.keysDestroyed += r.keysDestroyed;
    }
    if (total.photos || total.punches || total.templates) this.opts.log?.info({ ...total }, 'retention sweep deleted records');
    return total;
  }

  async sweepTenant(tenant: string): Promise<SweepResult> {
    const now = this.s.clock.now();
    const st = getSettings(this.s.db, tenant);
    const out: SweepResult = { photos: 0, subjects: 0, punches: 0, templates: 0, keysDestroyed: 0 };
    if (st.contractEndedAt !== null && st.contractEndedAt <= now) {
      // Terminals first: no sealed template or reference photo stays waiting in the outbox, and
      // every terminal is told to erase every subject (the protocol has no tenant-wide wipe).
      this.s.outbox.cancelForSubject(tenant, null);
      out.subjects = this.eraseSubjectsEverywhere(tenant, now);
      out.photos += await this.sweepPhotos(tenant, { reason: 'contract-ended', where: '1 = 1', args: [] });
      out.templates += this.deleteTemplates(tenant, 'contract-ended', 'tenant = ?', [tenant]);
      const left = this.s.db.prepare('SELECT COUNT(*) FROM photos WHERE tenant = ?').pluck().get(tenant) as number;
      // Once: later passes find the key already gone and record nothing.
      if (left === 0 && this.s.keyring.destroyTenant(tenant)) {
        this.s.audit.record(now, { tenant, actor: this.id, action: 'vault-key.destroyed', objectKind: 'tenant', objectId: tenant, detail: { reason: 'contract-ended' } });
        out.keysDestroyed = 1;
      }
      // Punch records (no photos left, opaque ids only) are the customer's time records: they
      // keep their own retention after the contract ends and still go when it runs out.
      out.punches += this.sweepPunches(tenant, now - st.punchRetentionDays * DAY_MS);
      if (out.photos || out.templates || out.subjects || out.punches) checkpointWal(this.s.db);
      return out;
    }
    const photoCutoff = now - st.photoRetentionDays * DAY_MS;
    out.photos += await this.sweepPhotos(tenant, { reason: 'retention', where: "kind = 'punch' AND created_at < ?", args: [photoCutoff] });
    const leaverCutoff = now - st.leaverPhotoDays * DAY_MS;
    const leavers = 'SELECT subject FROM subjects WHERE tenant = ? AND left_at IS NOT NULL AND left_at <= ?';
    out.photos += await this.sweepPhotos(tenant, { reason: 'leaver', where: `subject IN (${leavers})`, args: [tenant, leaverCutoff] });
    out.templates += this.deleteTemplates(tenant, 'leaver', `tenant = ? AND subject IN (${leavers})`, [tenant, tenant, leaverCutoff]);
    const punchCutoff = now - st.punchRetentionDays * DAY_MS;
    // A punch record never outlives its retention, so its photo goes with it even if photos are kept longer.
    out.photos += await this.sweepPhotos(tenant, {
      reason: 'punch-retention',
      where: 'id IN (SELECT photo_id FROM punches WHERE tenant = ? AND received_at < ? AND photo_id IS NOT NULL)',
      args: [tenant, punchCutoff],
    });
    out.punches += this.sweepPunches(tenant, punchCutoff);
    // Wrapped keys and templates of what was deleted must not linger in the -wal file.
    if (out.photos || out.templates || out.punches) checkpointWal(this.s.db);
    this.onSwept(out.photos);
    return out;
  }

  /** Claims, shreds and deletes photos matching the scope, batch by batch. */
  private async sweepPhotos(tenant: string, scope: PhotoScope): Promise<number> {
    const claim = this.s.db.prepare(
      `UPDATE photos SET claimed_by = ?, claim_until = ?
       WHERE id IN (SELECT id FROM photos WHERE tenant = ? AND (${scope.where}) AND (claim_until IS NULL OR claim_until < ?) LIMIT ?)
       RETURNING id`,
    );
    // Set-based statements over the batch (json_each) rather than one statement per photo.
    // "+tenant" keeps the planner on the primary key: by the tenant index it would scan every photo of the tenant per batch.
    const del = this.s.db.prepare('DELETE FROM photos WHERE id IN (SELECT value FROM json_each(?)) AND +tenant = ? AND claimed_by = ? RETURNING id');
    const unlink = this.s.db.prepare('UPDATE punches SET photo_id = NULL WHERE tenant = ? AND photo_id IN (SELECT value FROM json_each(?))');
    const audit = this.s.db.prepare(
      `INSERT INTO audit (at, tenant, actor, action, object_kind, object_id, detail)
       SELECT ?, ?, ?, 'photo.deleted', 'photo', value, ? FROM json_each(?)`,
    );
    const detail = JSON.stringify({ reason: scope.reason });
    let total = 0;
    for (;;) {
      const now = this.s.clock.now();
      const ids = (claim.all(this.id, Date.now() + this.leaseMs, tenant, ...scope.args, Date.now(), this.batchSize) as Array<{ id: string }>).map((r) => r.id);
      if (!ids.length) break;
      // Bytes first: if we die here the rows remain claimed-then-expired and the next pass finishes the job.
      await this.s.vault.removeFiles(ids);
      this.s.db.transaction(() => {
        const gone = JSON.stringify((del.all(JSON.stringify(ids), tenant, this.id) as Array<{ id: string }>).map((r) => r.id));
        unlink.run(tenant, gone);
        total += audit.run(now, tenant, this.id, detail, gone).changes;
      })();
      // Let the HTTP server breathe between batches.
      await new Promise((r) => setImmediate(r));
    }
    return total;
  }

  /**
   * Contract end: queues erase-subject for every subject to every terminal, then deletes the
   * subject records (card and PIN hashes, groups). Batched; a later pass finds no subjects
   * left, so erases are queued once. Consent records stay as the tenant's proof of consent.
   */
  private eraseSubjectsEverywhere(tenant: string, now: number): number {
    const batch = this.s.db.prepare('SELECT subject FROM subjects WHERE tenant = ? ORDER BY subject LIMIT ?').pluck();
    const del = this.s.db.prepare('DELETE FROM subjects WHERE tenant = ? AND subject = ?');
    let total = 0;
    for (;;) {
      const subjects = batch.all(tenant, this.batchSize) as string[];
      if (!subjects.length) return total;
      this.s.db.transaction(() => {
        for (const subject of subjects) {
          this.s.outbox.enqueueAll(tenant, { type: 'erase-subject', subject }, subject);
          del.run(tenant, subject);
          this.s.audit.record(now, { tenant, actor: this.id, action: 'subject.erased', objectKind: 'subject', objectId: subject, detail: { reason: 'contract-ended' } });
        }
      })();
      total += subjects.length;
    }
  }

  private deleteTemplates(tenant: string, reason: string, where: string, args: unknown[]): number {
    const now = this.s.clock.now();
    let n = 0;
    this.s.db.transaction(() => {
      const rows = this.s.db.prepare(`DELETE FROM templates WHERE ${where} RETURNING id`).all(...args) as Array<{ id: string }>;
      for (const r of rows) this.s.audit.record(now, { tenant, actor: this.id, action: 'template.deleted', objectKind: 'template', objectId: r.id, detail: { reason } });
      n = rows.length;
    })();
    return n;
  }

  private sweepPunches(tenant: string, cutoff: number): number {
    const now = this.s.clock.now();
    const del = this.s.db.prepare(
      'DELETE FROM punches WHERE rowid IN (SELECT rowid FROM punches WHERE tenant = ? AND received_at < ? AND photo_id IS NULL LIMIT ?) RETURNING event_id AS id',
    );
    let total = 0;
    for (;;) {
      let n = 0;
      this.s.db.transaction(() => {
        const rows = del.all(tenant, cutoff, this.batchSize) as Array<{ id: string }>;
        for (const r of rows) this.s.audit.record(now, { tenant, actor: this.id, action: 'punch.deleted', objectKind: 'punch', objectId: r.id, detail: { reason: 'retention' } });
        this.s.db.prepare('DELETE FROM events WHERE tenant = ? AND received_at < ? AND type = ?').run(tenant, cutoff, 'punch');
        n = rows.length;
      })();
      total += n;
      if (n < this.batchSize) break;
    }
    return total;
  }
}
