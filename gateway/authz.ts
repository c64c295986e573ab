import { CHANNELS, TOPIC_ROOT, isValidId, parseTopic, topicFor, type Channel } from '../protocol/index.js';
import type { CertRole } from '../protocol/cert-identity.js';

/**
 * Who may publish and subscribe to what. The identity comes from the verified client
 * certificate (tenant, role, id), never from the MQTT client id or username. Every rule is a
 * whitelist; anything not named here is refused.
 *
 *   device       publishes its own events, status, door; subscribes to its own ack, cmd
 *   integration  subscribes to door decisions and status of its tenant's devices (all or one):
 *                a door-access panel needs the decisions and whether each terminal is up
 *   operator     subscribes to status and door topics of its tenant
 *   gateway, cloud certificates get no broker rights (they talk HTTPS, not MQTT)
 */
export interface ClientIdentity {
  tenant: string;
  role: CertRole;
  id: string;
  serial: string;
}

const DEVICE_PUBLISH: readonly Channel[] = ['events', 'status', 'door'];
const DEVICE_SUBSCRIBE: readonly Channel[] = ['ack', 'cmd'];
const READ_CHANNELS: Partial<Record<CertRole, readonly Channel[]>> = {
  integration: ['door', 'status'],
  operator: ['status', 'door'],
};

/**
 * The topics a client may publish to, each with its channel: a device's own events, status and
 * door topics, nothing for anyone else. The broker builds this once per connection and looks
 * each publish's topic up in it (no topic parsing on the hot path).
 */
export function publishRights(who: ClientIdentity): ReadonlyMap<string, Channel> {
  if (who.role !== 'device' || !isValidId(who.tenant) || !isValidId(who.id)) return new Map();
  return new Map(DEVICE_PUBLISH.map((channel) => [topicFor(who.tenant, who.id, channel), channel]));
}

export function maySubscribe(who: ClientIdentity, filter: string): boolean {
  if (who.role === 'device') {
    const address = tryParseTopic(filter);
    return !!address && address.tenant === who.tenant && address.device === who.id && DEVICE_SUBSCRIBE.includes(address.channel);
  }
  const channels = READ_CHANNELS[who.role];
  if (!channels) return false;
  // cf/v1/{tenant}/{device|+}/{channel}: the single-level wildcard is allowed in the device
  // position only; '#' and wildcards elsewhere would reach beyond the role's channels.
  const parts = filter.split('/');
  if (parts.length !== 5 || `${parts[0]}/${parts[1]}` !== TOPIC_ROOT) return false;
  const [, , tenant, device, channel] = parts as [string, string, string, string, string];
  if (tenant !== who.tenant) return false;
  if (device !== '+' && !isValidId(device)) return false;
  return (CHANNELS as readonly string[]).includes(channel) && channels.includes(channel as Channel);
}

function tryParseTopic(topic: string) {
  try {
    return parseTopic(topic);
  } catch {
    return null;
  }
}

/**
 * The broker-side session id for a client. A device has exactly one session, named after its
 * certificate, so one terminal can never take over another's session by claiming its client
 * id. Tools (operators, integrations) may run several sessions, each under their own name.
 */
export function sessionId(who: ClientIdentity, claimedClientId: string | undefined): string {
  const base = `${who.tenant}/${who.role}/${who.id}`;
  if (who.role === 'device') return base;
  const suffix = (claimedClientId ?? '').replace(/[^A-Za-z0-9_.-]/g, '').slice(0, 64);
  return suffix ? `${base}/${suffix}` : `${base}/${Math.random().toString(36).slice(2, 10)}`;
}
