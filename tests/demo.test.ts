import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

/*
 * `npm run demo` is the README's main job: run it as a newcomer would (the compiled CLI as a
 * child process) and hold it to its own verdict: exit 0 and every expected outcome happened.
 */
const root = resolve(import.meta.dirname, '..');
const cli = join(root, 'dist/cli/main.js');
const work = mkdtempSync(join(tmpdir(), 'cf-demo-test-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('npm run demo', () => {
  it('plays the whole day and every expected outcome happens', async () => {
    if (!existsSync(cli)) execFileSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', join(root, 'tsconfig.build.json')], { stdio: 'inherit' });
    // No --dir, no --json-summary: as a newcomer runs it, the work folder is removed after a
    // passing day, and the summary must still be where the demo says it is.
    const { code, stdout } = await new Promise<{ code: number | null; stdout: string }>((done) => {
      execFile(process.execPath, [cli, 'demo'], { cwd: work, maxBuffer: 16 * 1024 * 1024 }, (err, out) =>
        done({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout: out }),
      );
    });
    const summaryFile = /^JSON summary: (.+)$/m.exec(stdout)?.[1] ?? '';
    expect(summaryFile.startsWith(join(work, '.demo')), stdout).toBe(true);
    const summary = JSON.parse(readFileSync(summaryFile, 'utf8')) as { ok: boolean; outcomes: Array<{ step: string; ok: boolean; actual: string }> };
    expect(summary.outcomes.filter((o) => !o.ok), stdout).toEqual([]);
    expect(summary.ok).toBe(true);
    expect(summary.outcomes.length).toBeGreaterThanOrEqual(15);
    expect(code).toBe(0);
    expect(stdout).toMatch(/15 of 15 expected outcomes happened/);
  }, 300_000);
});
