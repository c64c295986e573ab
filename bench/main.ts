/**
 * `npm run bench [-- NAME...]`: runs component benchmarks and prints one JSON document on
 * stdout (progress goes to stderr). Speed goals are checked here, not in tests.
 */
type Bench = () => Promise<Record<string, unknown>>;

const benches: Record<string, () => Promise<Bench>> = {
  protocol: async () => (await import('./protocol.js')).run,
  cloud: async () => (await import('./cloud.js')).run,
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
  return 0;
}

function machineFacts() {
  return { node: process.version, platform: `${process.platform}-${process.arch}`, cpus: (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator?.hardwareConcurrency ?? null };
}

main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
