import type { Logger } from '../common/log.js';
import { isValidId } from '../protocol/index.js';
import { normalizeSerial } from '../protocol/cert-identity.js';
import { CloudError, type CloudClient } from './cloud-client.js';
import type { OutboundDelivery } from './delivery.js';
import type { GatewayMetrics } from './metrics.js';
import { Backoff, Sleeper } from './resilience.js';
import { refusalReason, sendIsolatingPoison } from './poison.js';
import type { GatewayStore } from './store.js';

/**
 * The downlink and the small reports:
 *  - commands: long-poll GET /v1/gateway/commands (chosen over SSE/WebSocket: plain HTTPS
 *    requests pass every proxy, and the cursor makes a lost answer harmless); each command is
 *    stored with the cursor in one transaction, then offered to its device;
 *  - delivered: PUBACKed commands reported to the cloud;
 *  - presence: device online/offline (status messages and Last Wills) reported to the cloud;
 *  - revocations: the cloud's revoked certificate serials, kept in the store.
 */
export interface CloudSyncOptions {
  tenant: string;
  store: GatewayStore;
  cloud: CloudClient;
  delivery: OutboundDelivery;
  longPollSeconds: number;
  revocationRefreshMs: number;
  backoffBaseMs: number;
  backoffMaxMs: number;
  metrics: GatewayMetrics;
  log: Logger;
  onRevocations: (serials: Set<string>) => void;
}

export class CloudSync {
  private readonly pollSleeper = new Sleeper();
  private readonly reportSleeper = new Sleeper();
  private readonly revocationSleeper = new Sleeper();
  private readonly abort = new AbortController();
  private loops: Promise<void>[] = [];
  lastCommandPoll: number | null = null;

  constructor(private readonly opts: CloudSyncOptions) {}

  start(): void {
    if (this.loops.length) return;
    // Revocations have their own loop: a failing delivery or presence report must never delay them.
    this.loops = [this.pollCommands(), this.report(), this.watchRevocations()];
  }

  /** Something to report (a delivery, a presence change): send it soon. */
  nudge(): void {
    this.reportSleeper.wake();
  }

  async stop(): Promise<void> {
    this.pollSleeper.stop();
    this.reportSleeper.stop();
    this.revocationSleeper.stop();
    this.abort.abort();
    await Promise.allSettled(this.loops);
  }

  private async pollCommands(): Promise<void> {
    const { store, cloud, delivery, log, metrics } = this.opts;
    const backoff = new Backoff(this.opts.backoffBaseMs, this.opts.backoffMaxMs);
    // A cloud that restarts answers the open poll early and refuses connections for a while:
    // that is one outage, logged once when it starts and once when it ends, not once per retry.
    let failures = 0;
    while (!this.pollSleeper.isStopped) {
      try {
        const answer = await cloud.commands(store.getValue('commandCursor'), this.opts.longPollSeconds, this.abort.signal);
        this.lastCommandPoll = Date.now();
        if (failures > 0) log.info({ failedPolls: failures }, 'command poll reaches the cloud again');
        failures = 0;
        const accepted = answer.commands.filter((c) => {
          const ok = c.tenant === this.opts.tenant && isValidId(c.device);
          if (!ok) log.warn({ commandId: c.commandId, reason: 'wrong-tenant-or-device' }, 'command for another tenant or an invalid device id ignored');
          return ok;
        });
        const rows = accepted.map((c) => ({ commandId: c.commandId, device: c.device, envelope: Buffer.from(c.envelope, 'base64'), expiresAt: c.expiresAt ?? null }));
        const added = store.addCommands(rows, answer.cursor);
        metrics.commandsReceived.inc(undefined, added);
        for (const device of new Set(rows.map((r) => r.device))) delivery.flush(device, 'cmd');
        backoff.reset();
        if (this.opts.longPollSeconds === 0) await this.pollSleeper.sleep(1000);
      } catch (err) {
        if (this.pollSleeper.isStopped) break;
        const authFailure = err instanceof CloudError && err.isAuthFailure;
        const trustFailure = err instanceof CloudError && err.isTrustFailure;
        // Neither a refused token nor a refused certificate mends itself: retry rarely, in case someone fixes it.
        const delay = authFailure || trustFailure ? this.opts.backoffMaxMs : backoff.next();
        failures += 1;
        if (err instanceof CloudError && trustFailure) {
          // Not an outage: this gateway refuses the cloud it was given. Say so every time, plainly.
          log.error({ reason: 'cloud-certificate-untrusted', tlsCode: err.tlsCode, err: { message: err.message }, retryInMs: delay }, "ALARM: the cloud's certificate is not trusted; no command reaches this site until cloud.ca or the cloud's certificate is fixed");
        } else {
          // A refused token is someone's to fix: say so every time. An unreachable cloud: once per outage.
          const level = authFailure || failures === 1 ? 'warn' : 'debug';
          log[level]({ err: { message: (err as Error).message }, retryInMs: delay, failedPolls: failures }, 'command poll failed; will retry');
        }
        await this.pollSleeper.sleep(delay);
      }
    }
  }

  private async report(): Promise<void> {
    const backoff = new Backoff(this.opts.backoffBaseMs, this.opts.backoffMaxMs);
    while (!this.reportSleeper.isStopped) {
      let delay = 1000;
      try {
        await this.sendDelivered();
        await this.sendPresence();
        this.opts.delivery.expire();
        backoff.reset();
      } catch (err) {
        delay = backoff.next();
        this.opts.log.warn({ err: { message: (err as Error).message }, retryInMs: delay }, 'report to the cloud failed; will retry');
      }
      await this.reportSleeper.sleep(delay);
    }
  }

  /** Fetches the revocation list every revocationRefreshMs; after a failure, sooner (back-off, at most the refresh period). */
  private async watchRevocations(): Promise<void> {
    const backoff = new Backoff(this.opts.backoffBaseMs, Math.min(this.opts.backoffMaxMs, this.opts.revocationRefreshMs));
    while (!this.revocationSleeper.isStopped) {
      let delay = this.opts.revocationRefreshMs;
      try {
        await this.refreshRevocations();
        backoff.reset();
      } catch (err) {
        if (this.revocationSleeper.isStopped) break;
        delay = backoff.next();
        this.opts.log.warn({ err: { message: (err as Error).message }, retryInMs: delay }, 'revocation list fetch failed; keeping the stored list, will retry');
      }
      await this.revocationSleeper.sleep(delay);
    }
  }

  private async sendDelivered(): Promise<void> {
    const { store, cloud, metrics, log } = this.opts;
    for (let batch = store.pendingDeliveryReports(); batch.length; batch = store.pendingDeliveryReports()) {
      await sendIsolatingPoison(
        batch,
        async (part) => {
          await cloud.delivered(part);
          store.clearDeliveryReports(part.map((d) => d.commandId));
        },
        (report, err) => {
          // A report the cloud refuses on its own would block every later one: drop it, loudly.
          store.clearDeliveryReports([report.commandId]);
          metrics.reportsDropped.inc({ kind: 'delivered' });
          log.error({ commandId: report.commandId, reason: refusalReason(err) }, 'cloud refuses this delivery report on its own; dropped, sending the rest');
        },
      );
    }
  }

  private async sendPresence(): Promise<void> {
    const { store, cloud, tenant, metrics, log } = this.opts;
    for (let batch = store.pendingPresence(); batch.length; batch = store.pendingPresence()) {
      // Parts go in order, so clearing up to a part's last seq never skips an unsent change.
      await sendIsolatingPoison(
        batch,
        async (part) => {
          await cloud.presence(part.map((p) => ({ tenant, device: p.device, state: p.state, at: p.at })));
          store.clearPresenceUpTo(part[part.length - 1]!.seq);
        },
        (change, err) => {
          store.clearPresenceUpTo(change.seq);
          metrics.reportsDropped.inc({ kind: 'presence' });
          log.error({ device: change.device, reason: refusalReason(err) }, 'cloud refuses this presence change on its own; dropped, sending the rest');
        },
      );
    }
  }

  async refreshRevocations(): Promise<void> {
    const answer = await this.opts.cloud.revocations();
    const serials = answer.serials.map(normalizeSerial);
    this.opts.store.setValue('revocations', JSON.stringify({ version: answer.version, serials }));
    this.opts.onRevocations(new Set(serials));
  }
}

/** The revocation list last fetched (survives restarts, so a revoked unit stays out while the cloud is unreachable). */
export function storedRevocations(store: GatewayStore): Set<string> {
  const raw = store.getValue('revocations');
  if (!raw) return new Set();
  try {
    const parsed = JSON.parse(raw) as { serials?: unknown };
    return new Set(Array.isArray(parsed.serials) ? parsed.serials.filter((s): s is string => typeof s === 'string') : []);
  } catch {
    return new Set();
  }
}
