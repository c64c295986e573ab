import { execFileSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort } from '../common/free-port.js';
import { tempDir, writeTenantKeys } from '../cloud/testing/fixtures.js';
import { CloudClient } from '../gateway/cloud-client.js';
import { CLI_PATH, inheritedEnv, startRole } from '../demo/processes.js';
import { round } from './measure.js';

/**
 * `npm run bench -- cloud-stop`: how long a real `clockface cloud` process takes to exit on
 * SIGTERM while a gateway long-polls it for commands (the situation systemd restarts and the
 * demo's outage step are in). Each run starts the cloud from dist/, opens one 25 s long poll
 * (the gateway's default) and, once the cloud has logged the request, sends SIGTERM and times
 * the exit. Reports the median and the spread of several runs; the target is 2 s.
 */
// Not CLOCKFACE_-prefixed: the cloud child would read that as a config key and refuse to start.
const RUNS = Number(process.env.CF_BENCH_STOP_RUNS ?? 5);

export async function run(): Promise<Record<string, unknown>> {
  const dir = tempDir('cf-bench-stop-');
  try {
    const keys = writeTenantKeys(dir, 'acme');
    const stops: number[] = [];
    const polls: string[] = [];
    for (let i = 0; i < RUNS; i++) {
      const { stopMs, poll } = await oneStop(join(dir, `run-${i}`), keys.dir);
      stops.push(stopMs);
      polls.push(poll);
      process.stderr.write(`cloud-stop: run ${i + 1}/${RUNS}: ${stopMs} ms (long poll: ${poll})\n`);
    }
    const sorted = [...stops].sort((a, b) => a - b);
    return { runs: RUNS, stopMsMedian: sorted[Math.floor(sorted.length / 2)], stopMsMin: sorted[0], stopMsMax: sorted[sorted.length - 1], stopMs: stops, longPollEndings: polls, targetMs: 2000 };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function oneStop(work: string, keysDir: string): Promise<{ stopMs: number; poll: string }> {
  const [port, opsPort] = [await freePort(), await freePort()];
  const config = join(`${work}.json`);
  writeFileSync(config, JSON.stringify({ dataDir: join(work, 'data'), http: { host: '127.0.0.1', port, tls: null }, tenants: [{ id: 'acme', keysDir }], ops: { port: opsPort }, log: { level: 'info' } }));
  const owner = JSON.parse(execFileSync(process.execPath, [CLI_PATH, 'cloud', 'api-key', 'create', '--config', config, '--tenant', 'acme', '--role', 'owner'], { encoding: 'utf8', env: inheritedEnv() })) as { key: string };
  const cloud = await startRole({ name: 'cloud', args: ['cloud', '--config', config], logDir: join(work, 'logs') });
  const base = `http://127.0.0.1:${port}`;
  const gateway = await fetch(`${base}/v1/tenants/acme/gateways`, { method: 'POST', headers: { authorization: `Bearer ${owner.key}`, 'content-type': 'application/json' }, body: JSON.stringify({ gateway: 'site-1' }) });
  const { token } = (await gateway.json()) as { token: string };
  // The gateway's own client (keep-alive agent), as a site's gateway polls.
  const client = new CloudClient({ url: base, token });
  const poll = client.commands(null, 25).then(
    (r) => `answered with ${r.commands.length} commands`,
    (err: Error) => `failed: ${err.message}`,
  );
  // SIGTERM once the cloud has the poll in hand (its second request), not before.
  while (readFileSync(cloud.logFile, 'utf8').split('"incoming request"').length < 3) await new Promise((r) => setTimeout(r, 20));
  await new Promise((r) => setTimeout(r, 200));
  const started = performance.now();
  await cloud.stop('SIGTERM', 60_000);
  const stopMs = round(performance.now() - started, 0);
  const ending = await poll;
  client.close();
  return { stopMs, poll: ending };
}
