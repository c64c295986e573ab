import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const CLI = 'dist/cli/main.js';

async function clockface(...args: string[]) {
  try {
    const { stdout, stderr } = await run(process.execPath, [CLI, ...args]);
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('the clockface command (built JavaScript, no TypeScript loader)', () => {
  beforeAll(() => {
    if (!existsSync(CLI)) throw new Error('run `npm run build` first (npm test does)');
  });

  it('lists every role in --help', async () => {
    const { code, stdout } = await clockface('--help');
    expect(code).toBe(0);
    for (const role of ['device', 'gateway', 'cloud', 'provision', 'face', 'hw', 'demo', 'version']) expect(stdout).toMatch(new RegExp(`^  ${role} `, 'm'));
  });

  it('prints the package and Node versions', async () => {
    const { code, stdout } = await clockface('version', '--json');
    expect(code).toBe(0);
    const info = JSON.parse(stdout);
    expect(info.clockface).toBe(process.env.npm_package_version ?? info.clockface);
    expect(info.clockface).toMatch(/^\d+\.\d+\.\d+/);
    expect(info.node).toBe(process.version);
  });

  it('refuses an unknown role with the usage', async () => {
    const { code, stderr } = await clockface('teleport');
    expect(code).toBe(2);
    expect(stderr).toContain('unknown role "teleport"');
  });
});

describe('the demo', () => {
  it('runs and reports every expected outcome', async () => {
    const { code, stdout } = await clockface('demo');
    expect(code).toBe(0);
    expect(stdout).toMatch(/(\d+) of \1 expected outcomes happened/);
  });
});
