import type { Logger } from '../../common/log.js';
import type { CloudService } from '../service.js';
import { getSettings } from '../settings.js';
import { EngineError, type RecheckEngine } from './engine.js';

/**
 * Re-checks punch photos per tenant policy: face exists (detect) and similarity to the
 * subject's reference photo (compare), scores stored 0..1. A low score flags the punch for
 * review. Calls are rate limited; failures retry with exponential backoff and, after
 * maxAttempts, the punch goes to the dead-letter state (visible to admins and in metrics).
 */
const CLAIM_LEASE_MS = 10 * 60_000;

export interface RecheckOptions {
  ratePerSecond: number;
  maxAttempts: number;
  intervalMs: number;
  /** What the rate limiter reads and waits on; real time unless a test counts calls per window. */
  pacer?: Pacer;
}

export interface Pacer {
  now(): number;
  sleep(ms: number): Promise<void>;
}

const realTime: Pacer = { now: () => Date.now(), sleep: (ms) => new Promise((r) => setTimeout(r, ms)) };

export interface RecheckOutcome {
  eventId: string;
  state: 'done' | 'retry' | 'dead-letter' | 'cancelled';
}

interface PendingRow {
  tenant: string;
  eventId: string;
  subject: string | null;
  photoId: string | null;
  attempts: number;
}

export class RecheckWorker {
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private current: Promise<unknown> | undefined;
  private nextCallAt = 0;

  constructor(
    private readonly s: CloudService,
    private readonly engine: RecheckEngine,
    private readonly opts: RecheckOptions,
    private readonly log?: Logger,
  ) {}

  start(): void {
    this.stopped = false;
    const loop = () => {
      if (this.stopped) return;
      this.current = this.runOnce()
        .catch((err: unknown) => this.log?.error({ err }, 're-check pass failed'))
        .finally(() => {
          if (!this.stopped) this.timer = setTimeout(loop, this.opts.intervalMs);
        });
    };
    loop();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.current;
  }

  /** Re-checks every punch that is due; returns what happened to each. */
  async runOnce(limit = 100): Promise<RecheckOutcome[]> {
    // Claim atomically by pushing the due time out by a lease: two workers (two processes) never take the same punch,
    // and a worker that dies mid-way only delays its punches by the lease.
    const now = this.s.clock.now();
    const rows = this.s.db
      .prepare(
        `UPDATE punches SET recheck_next_at = ?
         WHERE rowid IN (SELECT rowid FROM punches WHERE recheck_state = 'pending' AND recheck_next_at <= ? ORDER BY recheck_next_at LIMIT ?)
         RETURNING tenant, event_id AS eventId, subject, photo_id AS photoId, recheck_attempts AS attempts`,
      )
      .all(now + CLAIM_LEASE_MS, now, limit) as PendingRow[];
    const out: RecheckOutcome[] = [];
    for (const row of rows) {
      if (this.stopped) break;
      out.push({ eventId: row.eventId, state: await this.one(row) });
    }
    return out;
  }

  /** Review reasons set at ingest (e.g. clock-unsynced) stay beside the re-check's own. */
  private withEarlierReasons(tenant: string, eventId: string, reasons: string[]): string[] {
    const earlier = this.s.db.prepare('SELECT review_reasons FROM punches WHERE tenant = ? AND event_id = ?').pluck().get(tenant, eventId) as string | undefined;
    return [...new Set([...(earlier ? (JSON.parse(earlier) as string[]) : []), ...reasons])];
  }

  /** Spaces engine calls so the configured rate is never exceeded. */
  private async throttle(): Promise<void> {
    const pacer = this.opts.pacer ?? realTime;
    const gap = 1000 / this.opts.ratePerSecond;
    const now = pacer.now();
    const wait = Math.max(0, this.nextCallAt - now);
    this.nextCallAt = Math.max(now, this.nextCallAt) + gap;
    if (wait > 0) await pacer.sleep(wait);
  }

  private async one(row: PendingRow): Promise<RecheckOutcome['state']> {
    const { tenant, eventId } = row;
    const settings = getSettings(this.s.db, tenant);
    let photo: Buffer;
    try {
      if (!row.photoId) throw new Error('gone');
      photo = this.s.vault.get(tenant, row.photoId);
    } catch {
      // Retention or erasure got there first: nothing left to check.
      this.s.db.prepare("UPDATE punches SET recheck_state = 'cancelled' WHERE tenant = ? AND event_id = ?").run(tenant, eventId);
      return 'cancelled';
    }
    try {
      let faceExists: number | null = null;
      let similarity: number | null = null;
      const reasons: string[] = [];
      if (settings.recheckFaceExists) {
        await this.throttle();
        const { faces } = await this.engine.detectFaces(photo);
        faceExists = faces.length ? Math.max(...faces.map((f) => f.confidence)) : 0;
        if (faceExists < settings.minFaceExists) reasons.push(faces.length ? 'face-exists-low' : 'no-face');
        if (faces.length > 1) reasons.push('several-faces');
      }
      const refId = row.subject
        ? (this.s.db.prepare("SELECT id FROM photos WHERE tenant = ? AND subject = ? AND kind = 'reference' ORDER BY created_at DESC LIMIT 1").pluck().get(tenant, row.subject) as string | undefined)
        : undefined;
      if (settings.recheckSimilarity && refId && faceExists !== 0) {
        await this.throttle();
        const reference = this.s.vault.get(tenant, refId);
        similarity = (await this.engine.compareFaces(reference, photo)).similarity;
        if (similarity === null || similarity < settings.minSimilarity) reasons.push('face-mismatch');
      }
      this.s.db
        .prepare(
          `UPDATE punches SET recheck_state = 'done', recheck_face_exists = ?, recheck_similarity = ?, recheck_engine = ?, recheck_error = NULL,
             recheck_attempts = recheck_attempts + 1, review_reasons = ?,
             review_state = CASE WHEN ? AND review_state = 'none' THEN 'open' ELSE review_state END
           WHERE tenant = ? AND event_id = ?`,
        )
        .run(faceExists, similarity, this.engine.name, JSON.stringify(this.withEarlierReasons(tenant, eventId, reasons)), reasons.length ? 1 : 0, tenant, eventId);
      return 'done';
    } catch (err) {
      const retryable = err instanceof EngineError ? err.retryable : true;
      const attempts = row.attempts + 1;
      const dead = !retryable || attempts >= this.opts.maxAttempts;
      const backoff = Math.min(this.opts.intervalMs * 2 ** attempts, 6 * 3_600_000);
      this.s.db
        .prepare(
          `UPDATE punches SET recheck_state = ?, recheck_attempts = ?, recheck_next_at = ?, recheck_error = ?,
             review_state = CASE WHEN ? AND review_state = 'none' THEN 'open' ELSE review_state END,
             review_reasons = CASE WHEN ? THEN '["recheck-failed"]' ELSE review_reasons END
           WHERE tenant = ? AND event_id = ?`,
        )
        .run(dead ? 'dead-letter' : 'pending', attempts, this.s.clock.now() + backoff, (err as Error).message.slice(0, 200), dead ? 1 : 0, dead ? 1 : 0, tenant, eventId);
      this.log?.warn({ eventId, attempts, dead, err: (err as Error).message }, 're-check failed');
      return dead ? 'dead-letter' : 'retry';
    }
  }
}
