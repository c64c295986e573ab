import type { Logger } from '../common/log.js';
import { readEnvelopeHeader } from './event-header.js';
import { GroupCommit } from './group-commit.js';
import type { GatewayMetrics } from './metrics.js';
import type { GatewayStore, OutboundChannel } from './store.js';

/**
 * Delivers commands and receipts to devices. Everything lives in the store until the device
 * PUBACKs it (or it expires), so a device that is offline, or a gateway that restarts, loses
 * nothing: on every (re)subscription the device is sent what is still waiting, in order.
 * Delivery is at least once; devices drop repeats by envelope id and sequence.
 *
 * A device's PUBACKs are batched: the ids acknowledged meanwhile are forgotten in one
 * transaction (on the event writer's thread, when the gateway passes `markDelivered`), not one
 * fsync per PUBACK on the broker's thread. A crash before that commit only means the message
 * is sent again, which at-least-once delivery allows; a command's delivery report is written
 * in the same transaction that forgets it.
 */
export interface DevicePublisher {
  publishToDevice(device: string, channel: OutboundChannel, envelope: Buffer): void;
}

export class OutboundDelivery {
  private readonly subscribed = new Map<string, Set<OutboundChannel>>();
  /** Ids sent on the current connection and not yet PUBACKed: not sent twice per connection. */
  private readonly inFlight = new Map<string, Set<string>>();
  private readonly acks: GroupCommit<{ device: string; id: string }>;

  constructor(
    private readonly store: GatewayStore,
    private readonly publisher: DevicePublisher,
    private readonly metrics: GatewayMetrics,
    private readonly log: Logger,
    private readonly onCommandDelivered: () => void = () => {},
    markDelivered: (ids: string[]) => (OutboundChannel | null)[] | Promise<(OutboundChannel | null)[]> = (ids) => store.markDeliveredMany(ids),
  ) {
    this.acks = new GroupCommit(async (acked) => {
      const channels = await markDelivered(acked.map((a) => a.id));
      let commands = 0;
      acked.forEach(({ device, id }, i) => {
        const was = channels[i];
        if (!was) return;
        this.metrics.outboundDelivered.inc({ channel: was });
        if (was === 'cmd') {
          this.log.info({ device, commandId: id }, 'command delivered');
          commands++;
        }
      });
      if (commands) this.onCommandDelivered();
    });
  }

  deviceSubscribed(device: string, channel: OutboundChannel): void {
    let set = this.subscribed.get(device);
    if (!set) this.subscribed.set(device, (set = new Set()));
    set.add(channel);
    this.flush(device, channel);
  }

  deviceDisconnected(device: string): void {
    this.subscribed.delete(device);
    this.inFlight.delete(device);
  }

  /**
   * Envelopes newly stored for devices (commands, or receipts from the event writer): sent at once to the
   * devices listening. No need to read the store again: a subscribed device was sent everything
   * older when it subscribed (flush) or when it was stored, so the new ones are all it lacks.
   */
  stored(added: readonly { id: string; device: string; channel: OutboundChannel; envelope: Buffer }[]): void {
    for (const m of added) {
      if (!this.subscribed.get(m.device)?.has(m.channel)) continue;
      let sent = this.inFlight.get(m.device);
      if (!sent) this.inFlight.set(m.device, (sent = new Set()));
      if (sent.has(m.id)) continue;
      sent.add(m.id);
      this.publisher.publishToDevice(m.device, m.channel, m.envelope);
    }
  }

  /** Sends whatever is waiting for a device on a channel, if it is subscribed. */
  flush(device: string, channel: OutboundChannel): void {
    if (!this.subscribed.get(device)?.has(channel)) return;
    this.stored(this.store.pendingOutbound(device, channel).map((m) => ({ ...m, device, channel })));
  }

  /** The device PUBACKed something we sent it. */
  acked(device: string, channel: string, payload: Buffer): void {
    if (channel !== 'ack' && channel !== 'cmd') return;
    let id: string;
    try {
      id = readEnvelopeHeader(payload).id;
    } catch {
      return;
    }
    // Stays "in flight" (not sent again on this connection) until it is forgotten on disk.
    this.acks.add({ device, id }, (err) => {
      if (err) this.log.warn({ err: { message: err.message }, device }, 'could not record a delivery; the message will be sent again');
      else this.inFlight.get(device)?.delete(id);
    });
  }

  /** Resolves once every PUBACK received so far is recorded. */
  settled(): Promise<void> {
    return this.acks.drained();
  }

  expire(): void {
    const n = this.store.expireOutbound();
    if (n) this.log.info({ expired: n }, 'outbound messages expired before their device came back');
  }
}
