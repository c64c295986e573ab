import { join } from 'node:path';
import { topics } from '../protocol/index.js';

/**
 * What a door-access integration may read (gateway/authz.ts enforces it), and the stock
 * Mosquitto command that reads it with an integration bundle: `provision integration add` and
 * the demo print it, and tests run exactly this command against a gateway.
 */
export function integrationTopics(tenant: string): { door: string; status: string } {
  return { door: topics.tenantWildcard(tenant, 'door'), status: topics.tenantWildcard(tenant, 'status') };
}

export interface SubscribeCommandOptions {
  tenant: string;
  /** The integration bundle folder (ca.crt, integration.crt, integration.key). */
  bundle: string;
  host: string;
  port: number;
  /** Also read the terminals' status (retained: each terminal's latest state at once). */
  withStatus?: boolean;
}

/** argv of `mosquitto_sub` (Debian's mosquitto-clients) reading door decisions, one JSON payload per line after its topic. */
export function mosquittoSubArgs(o: SubscribeCommandOptions): string[] {
  const t = integrationTopics(o.tenant);
  return [
    '-h', o.host, '-p', String(o.port), '-V', 'mqttv311', '-q', '1',
    '--cafile', join(o.bundle, 'ca.crt'), '--cert', join(o.bundle, 'integration.crt'), '--key', join(o.bundle, 'integration.key'),
    '-t', t.door, ...(o.withStatus ? ['-t', t.status] : []), '-v',
  ];
}

/** The same command as one line a person can paste into a shell. */
export function mosquittoSubCommand(o: SubscribeCommandOptions): string {
  return ['mosquitto_sub', ...mosquittoSubArgs(o)].map(shellQuote).join(' ');
}

function shellQuote(arg: string): string {
  return /^[A-Za-z0-9_./:=@-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}
