import { execFileSync } from 'node:child_process';
import { CLI_PATH } from '../../demo/processes.js';

/** Runs the built `clockface` command and returns its stdout; throws on a non-zero exit. */
export function clockface(args: string[]): string {
  // A deadline: a CLI that hangs blocks this test's event loop, which no test timeout can end.
  return execFileSync(process.execPath, [CLI_PATH, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 120_000 });
}
