/**
 * `npm run bench [-- NAME...]`: runs component benchmarks and prints one JSON document on
 * stdout (progress goes to stderr). Speed goals are checked here, not in tests.
 */
import { cpus } from 'node:os';

type Bench = () => Promise<Record<string, unknown>>;

const benches: Record<string, () => Promise<Bench>> = {
  protocol: async () => (await import('./protocol.js')).run,
  camera: async () => (await import('./camera.js')).run,
  provision: async () => (await import('./provision.js')).run,
  gateway: async () => (await import('./gateway.js')).run,
  'gateway-drain': async () => (await import('./gateway-drain.js')).run,
  'gateway-wipe': async () => (await import('./gateway-wipe.js')).run,
  device: async () => (await import('./device.js')).run,
  cloud: async () => (await import('./cloud.js')).run,
  face: async () => (await import('./face.js')).run,
  'face-loo': async () => (await import('./face-loo.js')).run,
  e2e: async () => (await import('./e2e.js')).run,
  'cloud-stop': async () => (await import('./cloud-stop.js')).run,
};

async function main(names: string[]): Promise<number> {
  const unknown = names.filter((n) => !(n in benches));
  if (unknown.length) {
    console.error(`bench: unknown benchmark(s) ${unknown.join(', ')}; available: ${Object.keys(benches).join(', ')}`);
    return 2;
  }
  const selected = names.length ? names : Object.keys(benches);
  const results: Record<string, unknown> = {};
  for (const name of selected) {
    process.stderr.write(`bench: ${name} ...\n`);
    results[name] = await (await benches[name]!())();
  }
  console.log(JSON.stringify({ machine: machineFacts(), results }, null, 2));
  process.stderr.write(`\n${table(results)}\n`);
  return 0;
}

/** A short human-readable table of every numeric figure, on stderr so stdout stays pure JSON. */
function table(results: Record<string, unknown>): string {
  const rows: [string, string][] = [];
  const walk = (prefix: string, value: unknown) => {
    if (typeof value === 'number') rows.push([prefix, Number.isInteger(value) ? String(value) : value.toFixed(2)]);
    else if (value && typeof value === 'object' && !Array.isArray(value)) {
      for (const [k, v] of Object.entries(value)) walk(prefix ? `${prefix}.${k}` : k, v);
    }
  };
  walk('', results);
  const width = Math.max(...rows.map(([k]) => k.length), 6);
  return rows.map(([k, v]) => `${k.padEnd(width)}  ${v.padStart(12)}`).join('\n');
}

function machineFacts() {
  return { node: process.version, platform: `${process.platform}-${process.arch}`, cpus: cpus().length, cpuModel: cpus()[0]?.model ?? null };
}

main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
