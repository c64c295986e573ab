import type { Logger } from '../common/log.js';
import { CloudError, ingestPart, ingestRequest, type CloudClient, type IngestRequest, type IngestResponse } from './cloud-client.js';
import type { GatewayMetrics } from './metrics.js';
import { Backoff, CircuitBreaker, Sleeper } from './resilience.js';
import { refusalReason, sendIsolatingPoison } from './poison.js';
import type { Answered, GatewayStore, QueuedEvent } from './store.js';

/**
 * Store and forward: sends queued events to the cloud's ingest API in arrival order, in
 * batches, one batch at a time. An event leaves the queue only when the cloud has answered
 * for it (stored, duplicate or rejected); a failed call retries the same events later, which
 * is safe because ingest is idempotent by event id. Receipts in the answer go to devices.
 */
export interface ForwarderOptions {
  tenant: string;
  /** For parking an event the cloud refuses on its own. */
  store: GatewayStore;
  /**
   * The queued events after seq `after` (0: from the head), oldest first, at most `limit` and
   * within the request cap, already encoded: the gateway reads them on a thread of its own
   * (gateway/forward-reader.ts).
   */
  nextBatch: (limit: number, after: number) => Promise<ForwardBatch>;
  cloud: CloudClient;
  batchSize: number;
  backoffBaseMs: number;
  backoffMaxMs: number;
  breakerThreshold: number;
  breakerCooldownMs: number;
  metrics: GatewayMetrics;
  log: Logger;
  /**
   * Drops the events the cloud answered for and keeps its receipts for the devices, in one
   * transaction; resolves once committed (the gateway runs it on the event writer's thread).
   */
  settle: (answered: Answered, receipts: IngestResponse['receipts']) => Promise<void>;
}

export type ForwarderState = 'idle' | 'forwarding' | 'backing-off' | 'circuit-open' | 'auth-failed' | 'stopped';

export class Forwarder {
  private readonly sleeper = new Sleeper();
  private readonly backoff: Backoff;
  readonly breaker: CircuitBreaker;
  private loop: Promise<void> | null = null;
  /**
   * The batch behind the one being sent, read meanwhile so the next request need not wait for
   * the read. Used only when the one before was answered in full (its events left the queue,
   * so the queue's head is where this one starts); otherwise dropped and the head read again.
   */
  private ahead: Promise<ForwardBatch | null> | null = null;
  state: ForwarderState = 'idle';
  lastError: string | null = null;
  /**
   * True from a 401/403 until a call succeeds again: the state also reads "forwarding" while a
   * retry is in flight, so health must not go by the state alone.
   */
  authFailing = false;

  constructor(private readonly opts: ForwarderOptions) {
    this.backoff = new Backoff(opts.backoffBaseMs, opts.backoffMaxMs);
    this.breaker = new CircuitBreaker(opts.breakerThreshold, opts.breakerCooldownMs);
  }

  start(): void {
    this.loop ??= this.run();
  }

  /** New events were queued: stop waiting and forward. */
  nudge(): void {
    if (this.state === 'idle') this.sleeper.wake();
  }

  /** Stops after the batch in flight (if any) has been answered or has failed. */
  async stop(): Promise<void> {
    this.sleeper.stop();
    await this.loop;
    this.state = 'stopped';
  }

  private async run(): Promise<void> {
    const { metrics, log } = this.opts;
    while (!this.sleeper.isStopped) {
      const wait = this.breaker.waitMs;
      if (wait > 0) {
        this.state = 'circuit-open';
        metrics.breakerOpen.set(1);
        await this.sleeper.sleep(wait);
        continue;
      }
      let batch: ForwardBatch;
      try {
        batch = await this.takeBatch();
      } catch (err) {
        // The reading thread died (it is restarted): nothing was sent, read again shortly.
        this.lastError = err instanceof Error ? err.message : String(err);
        log.error({ err: { message: this.lastError } }, 'reading the queue for forwarding failed; will retry');
        await this.sleeper.sleep(this.backoff.next());
        continue;
      }
      if (batch.events.length === 0) {
        this.state = 'idle';
        await this.sleeper.sleep(1000);
        continue;
      }
      this.state = 'forwarding';
      // Only with a backlog: under a steady flow the next batch, read later, holds more events
      // (fewer requests, fewer receipts) and reading it early would gain nothing.
      if (batch.more) this.readAhead(batch);
      try {
        let unanswered = 0;
        await sendIsolatingPoison(
          batch.events,
          async (part) => {
            unanswered += await this.forward(batch, part);
          },
          (event, err) => this.park(event, err),
        );
        this.authFailing = false;
        this.breaker.success();
        this.backoff.reset();
        metrics.breakerOpen.set(0);
        this.lastError = null;
        if (unanswered > 0) {
          // The cloud answered for only part of the batch: the rest is retried after a pause.
          this.ahead = null;
          log.warn({ unanswered }, 'cloud did not answer for every event in the batch');
          await this.sleeper.sleep(this.backoff.next());
        }
      } catch (err) {
        this.ahead = null;
        this.lastError = err instanceof Error ? err.message : String(err);
        if (err instanceof CloudError && err.isAuthFailure) {
          // Retrying will not fix a refused token: alarm and retry rarely, in case it is fixed.
          this.state = 'auth-failed';
          this.authFailing = true;
          metrics.forwardFailures.inc({ kind: 'auth' });
          log.error({ reason: 'auth-refused', status: err.status }, 'ALARM: the cloud refuses this gateway\'s token; forwarding stopped until it is fixed');
          await this.sleeper.sleep(this.opts.backoffMaxMs);
          continue;
        }
        if (err instanceof CloudError && err.isTrustFailure) {
          // This gateway refuses the cloud's certificate: no punch may leave for a cloud it cannot verify.
          metrics.forwardFailures.inc({ kind: 'tls' });
          this.state = 'backing-off';
          log.error({ reason: 'cloud-certificate-untrusted', tlsCode: err.tlsCode, err: { message: this.lastError } }, "ALARM: the cloud's certificate is not trusted; forwarding stopped until cloud.ca or the cloud's certificate is fixed");
          await this.sleeper.sleep(this.opts.backoffMaxMs);
          continue;
        }
        metrics.forwardFailures.inc({ kind: !(err instanceof CloudError) || err.status === 0 ? 'network' : err.status >= 500 ? 'server' : 'client' });
        this.breaker.failure();
        const delay = this.backoff.next();
        this.state = 'backing-off';
        log.warn({ err: { message: this.lastError }, retryInMs: delay, attempt: this.backoff.attempts }, 'forwarding failed; will retry');
        await this.sleeper.sleep(delay);
      }
    }
  }
  /** The batch read ahead if there is one with events in it, else the queue's head. */
  private async takeBatch(): Promise<ForwardBatch> {
    const ahead = await this.ahead;
    this.ahead = null;
    return ahead?.events.length ? ahead : this.opts.nextBatch(this.opts.batchSize, 0);
  }

  private readAhead(batch: ForwardBatch): void {
    // A failed read ahead costs nothing: the head is read again in its place.
    this.ahead = this.opts.nextBatch(this.opts.batchSize, batch.events[batch.events.length - 1]!.seq).catch(() => null);
  }

  /** Sends part of the queue; removes what the cloud answered for; returns how many it did not answer for. */
  private async forward(batch: ForwardBatch, part: readonly BatchEvent[]): Promise<number> {
    const { metrics, log } = this.opts;
    const from = batch.events.indexOf(part[0]!);
    const answer = await this.opts.cloud.ingestEncoded(ingestPart(batch.request, from, from + part.length));
    const sent = new Set(part.map((e) => e.id));
    const done = answer.results.filter((r) => sent.has(r.id));
    // A part is a seq range of the queue (new events only ever get higher seqs), so a fully
    // answered part is dropped as one range.
    const answeredIds = [...new Set(done.map((r) => r.id))];
    if (answeredIds.length || answer.receipts.length) await this.opts.settle(answeredIds.length === part.length ? { range: [part[0]!.seq, part[part.length - 1]!.seq] } : { ids: answeredIds }, answer.receipts);
    for (const r of done) {
      metrics.eventsForwarded.inc({ status: r.status });
      if (r.status === 'rejected') log.warn({ eventId: r.id, reason: r.reason }, 'cloud rejected an event; dropped from the queue');
    }
    return part.length - answeredIds.length;
  }

  /** The cloud refuses this event on its own: park it so the queue behind it moves on. */
  private park(event: BatchEvent, err: CloudError): void {
    const reason = refusalReason(err);
    this.opts.store.parkEvent(event.id, reason);
    this.opts.metrics.deadLettered.inc();
    this.opts.log.error({ eventId: event.id, device: event.device, reason }, 'cloud refuses this event on its own; parked in dead_letters, forwarding the rest');
  }
}

/** A queued event as the forwarder keeps it: its envelope is only in the encoded request. */
export type BatchEvent = Pick<QueuedEvent, 'seq' | 'id' | 'device'>;

export interface ForwardBatch {
  events: BatchEvent[];
  request: IngestRequest;
  /** The queue held more than this batch when it was read (a backlog: worth reading ahead). */
  more: boolean;
}

/**
 * Takes the next batch off the queue (at most `limit` events, within the request cap) and
 * encodes its request. `rows` must offer one row more than `limit` (so `more` can be told).
 */
export function readForwardBatch(rows: Iterable<QueuedEvent>, limit: number, tenant: string): ForwardBatch {
  let pulled = 0;
  function* upToLimit() {
    for (const row of rows) {
      if (++pulled > limit) return;
      yield row;
    }
  }
  const batch = withinRequestLimit(upToLimit());
  return {
    events: batch.map(({ seq, id, device }) => ({ seq, id, device })),
    request: ingestRequest(batch.map((e) => ({ id: e.id, tenant, device: e.device, envelope: e.envelope }))),
    more: pulled > batch.length,
  };
}

/** The ingest contract caps a request at 16 MiB; envelopes travel as base64 (4/3) plus JSON framing. */
export const INGEST_REQUEST_BYTES = 16 * 1024 * 1024;

/**
 * The longest prefix of the queue (at least one event) whose request stays under the cap. It
 * takes rows one at a time and stops at the first that does not fit, so a queue of punch
 * photos is read only as far as one request carries (≈ 200 of 80 KB), not 500 rows deep.
 */
export function withinRequestLimit<T extends { envelope: Buffer }>(queue: Iterable<T>, maxBytes = INGEST_REQUEST_BYTES): T[] {
  const batch: T[] = [];
  let bytes = 1024;
  for (const event of queue) {
    bytes += Math.ceil(event.envelope.length / 3) * 4 + 256;
    if (bytes > maxBytes && batch.length > 0) break;
    batch.push(event);
  }
  return batch;
}
