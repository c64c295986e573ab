import { performance } from 'node:perf_hooks';
import {
  newMessageId,
  parseMessage,
  sealAndSign,
  topics,
  DeviceEvent,
  type KeyPair,
  type PublicKeyRef,
} from '../protocol/index.js';
import type { z } from 'zod';
import type { DeviceStore, OutboxLimits } from './store.js';

export type DeviceEventBody = z.infer<typeof DeviceEvent>;
export type PunchBody = Extract<DeviceEventBody, { type: 'punch' }>;

export interface RecorderOptions {
  tenant: string;
  device: string;
  store: DeviceStore;
  signer: KeyPair;
  cloud: PublicKeyRef;
  limits: OutboxLimits;
  /** Called after an event is durably queued (the link wakes up and publishes). */
  onQueued?: () => void;
  onPressure?: (r: { photosDropped: string[]; eventsDropped: string[] }) => void;
  /** Every command outcome the terminal reports upstream (metrics count rejections by reason). */
  onCommandResult?: (outcome: 'applied' | 'rejected' | 'failed', reason: string | null) => void;
}

/**
 * Seals events to the cloud and writes them to the outbox. `record` returns only after the
 * SQLite transaction committed (synchronous=FULL), so callers fire the relay or say "done"
 * after the event is safe on disk.
 */
export class EventRecorder {
  private readonly stream: string;
  private lastPressureAlarm = 0;
  constructor(private readonly opts: RecorderOptions) {
    this.stream = `own-events:${opts.tenant}:${opts.device}`;
  }

  record(event: DeviceEventBody): void {
    const body = parseMessage(DeviceEvent, event);
    const seq = this.opts.store.nextOwnSequence(this.stream);
    const sentAt = Date.now();
    const seal = (b: DeviceEventBody) =>
      sealAndSign({
        kind: 'event',
        id: b.eventId,
        tenant: this.opts.tenant,
        device: this.opts.device,
        seq,
        body: b,
        signer: this.opts.signer,
        recipient: this.opts.cloud,
        sentAt,
      });
    const isPunch = body.type === 'punch';
    const hasPhoto = isPunch && body.photo !== null;
    const slim = hasPhoto ? seal({ ...body, photo: null, photoDropped: true, reasons: withReason(body.reasons, 'photo-dropped') }) : null;
    const result = this.opts.store.enqueue(
      {
        eventId: body.eventId,
        topic: topics.events(this.opts.tenant, this.opts.device),
        envelope: seal(body),
        slim,
        subject: isPunch ? body.subject : null,
        isPunch,
      },
      this.opts.limits,
    );
    if (result.photosDropped.length + result.eventsDropped.length > 0) {
      this.opts.onPressure?.(result);
      // Tell the cloud once per episode (at most every 10 min) that the terminal is shedding.
      if (body.type !== 'alarm' && Date.now() - this.lastPressureAlarm > 600_000) {
        this.lastPressureAlarm = Date.now();
        this.record({ type: 'alarm', eventId: newMessageId(), tenant: this.opts.tenant, device: this.opts.device, alarm: 'outbox-full', door: null, at: Date.now() });
      }
    }
    this.opts.onQueued?.();
  }

  commandResult(commandId: string | null, outcome: 'applied' | 'rejected' | 'failed', reason: string | null): void {
    this.opts.onCommandResult?.(outcome, reason);
    this.record({
      type: 'command-result',
      eventId: newMessageId(),
      tenant: this.opts.tenant,
      device: this.opts.device,
      commandId,
      outcome,
      reason: reason === null ? null : reason.slice(0, 200),
      at: Date.now(),
    });
  }
}

function withReason<T extends string>(reasons: readonly T[], r: T): T[] {
  return reasons.includes(r) ? [...reasons] : [...reasons, r];
}

export function monotonicMs(): number {
  return performance.now();
}
