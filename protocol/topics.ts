import { assertId } from './ids.js';
import { ProtocolError } from './errors.js';

/** MQTT topic layout: cf/v1/{tenant}/{device}/{channel}. See docs/ARCHITECTURE.md. */
export const TOPIC_ROOT = 'cf/v1';
export const CHANNELS = ['events', 'ack', 'cmd', 'status', 'door'] as const;
export type Channel = (typeof CHANNELS)[number];

export interface TopicAddress {
  tenant: string;
  device: string;
  channel: Channel;
}

export function topicFor(tenant: string, device: string, channel: Channel): string {
  assertId('tenant', tenant);
  assertId('device', device);
  if (!CHANNELS.includes(channel)) throw new ProtocolError('topic.invalid', `unknown channel ${JSON.stringify(channel)}`);
  return `${TOPIC_ROOT}/${tenant}/${device}/${channel}`;
}

export const topics = {
  events: (tenant: string, device: string) => topicFor(tenant, device, 'events'),
  ack: (tenant: string, device: string) => topicFor(tenant, device, 'ack'),
  cmd: (tenant: string, device: string) => topicFor(tenant, device, 'cmd'),
  status: (tenant: string, device: string) => topicFor(tenant, device, 'status'),
  door: (tenant: string, device: string) => topicFor(tenant, device, 'door'),
  /** Subscription filter for one channel of every device of a tenant (e.g. a site's door integration). */
  tenantWildcard: (tenant: string, channel: Channel) => `${TOPIC_ROOT}/${assertId('tenant', tenant)}/+/${channel}`,
};

/** Parses a concrete topic (no wildcards); throws topic.invalid on anything else. */
export function parseTopic(topic: string): TopicAddress {
  const parts = topic.split('/');
  if (parts.length !== 5 || `${parts[0]}/${parts[1]}` !== TOPIC_ROOT) {
    throw new ProtocolError('topic.invalid', `topic is not of the form ${TOPIC_ROOT}/{tenant}/{device}/{channel}`);
  }
  const [, , tenant, device, channel] = parts as [string, string, string, string, string];
  try {
    assertId('tenant', tenant);
    assertId('device', device);
  } catch (err) {
    throw new ProtocolError('topic.invalid', (err as Error).message);
  }
  if (!(CHANNELS as readonly string[]).includes(channel)) {
    throw new ProtocolError('topic.invalid', `unknown channel ${JSON.stringify(channel.slice(0, 40))}`);
  }
  return { tenant, device, channel: channel as Channel };
}
