import { mkdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'rolldown';
import { run, type CliIo } from './cli.js';

/** Helpers shared by the provisioning and systemd tests (not shipped code paths). */
const projectRoot = join(dirname(fileURLToPath(import.meta.url)), '..');

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
  json: Record<string, unknown>;
}

/** Runs `clockface provision …` in-process, capturing both streams. */
export async function provision(argv: string[], env: NodeJS.ProcessEnv = {}): Promise<CliRun> {
  let stdout = '';
  let stderr = '';
  const io: CliIo = { stdout: (l) => (stdout += `${l}\n`), stderr: (l) => (stderr += `${l}\n`), env };
  const code = await run(argv, io);
  let json: Record<string, unknown> = {};
  try {
    json = JSON.parse(stdout.trim().split('\n').pop() ?? '{}') as Record<string, unknown>;
  } catch {
    json = {};
  }
  return { code, stdout, stderr, json };
}

/**
 * Node 20 cannot run TypeScript, so a test that needs our code in a real child process
 * bundles the entry (our modules only; packages stay external) into node_modules/.cache,
 * where Node still resolves packages from the project's node_modules.
 */
export async function bundleEntry(entry: string, name: string): Promise<{ file: string; remove(): void }> {
  const dir = join(projectRoot, 'node_modules', '.cache', `clockface-prov-${process.pid}-${name}`);
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${name}.mjs`);
  await build({
    input: join(projectRoot, entry),
    platform: 'node',
    external: (id) => !id.startsWith('.') && !id.startsWith('/'),
    output: { file, format: 'esm', codeSplitting: false },
    logLevel: 'silent',
  });
  return { file, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

export { projectRoot };
