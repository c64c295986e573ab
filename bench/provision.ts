import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run as provision, type CliIo } from '../provisioning/cli.js';
import { percentile, round } from './measure.js';

/**
 * How long facilities staff wait at the laptop: `provision tenant init`, `gateway add` and
 * `device add` end to end (keys, certificates, files fsync'd, bundle archive), through the
 * same entry point as the CLI. The goal is "a site in minutes"; these are the seconds
 * of it spent in Clockface.
 */
export async function run(): Promise<Record<string, unknown>> {
  const dir = mkdtempSync(join(tmpdir(), 'cf-bench-prov-'));
  const quiet: CliIo = { stdout: () => {}, stderr: () => {}, env: {} };
  const time = async (argv: string[]) => {
    const t0 = process.hrtime.bigint();
    const code = await provision(argv, quiet);
    if (code !== 0) throw new Error(`provision ${argv.join(' ')} exited ${code}`);
    return Number(process.hrtime.bigint() - t0) / 1e6;
  };
  try {
    const out = join(dir, 'acme');
    const tenantMs = await time(['tenant', 'init', '--out', out, '--tenant', 'acme']);
    const gatewayMs = await time(['gateway', 'add', '--out', out, '--gateway', 'site-1', '--host', 'gw.local']);
    const deviceMs: number[] = [];
    for (let i = 0; i < 20; i++) {
      deviceMs.push(await time(['device', 'add', '--out', out, '--device', `door-${i}`, '--gateway', 'site-1', '--profile', 'pi-standard']));
    }
    const rotateMs = await time(['rotate', '--out', out, '--device', 'door-0']);
    const revokeMs = await time(['revoke', '--out', out, '--device', 'door-1']);
    deviceMs.sort((a, b) => a - b);
    return {
      tenantInitMs: round(tenantMs),
      gatewayAddMs: round(gatewayMs),
      deviceAdd: { n: deviceMs.length, p50Ms: round(percentile(deviceMs, 50)), p95Ms: round(percentile(deviceMs, 95)) },
      rotateMs: round(rotateMs),
      revokeWith20DevicesMs: round(revokeMs),
      targetDeviceAddMs: 2000,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
