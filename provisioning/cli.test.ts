import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HardwareConfig } from '../protocol/hardware-config.js';
import { PROFILE_NAMES } from './profiles.js';
import { bundleEntry, projectRoot } from './test-support.js';

/** The real `clockface` command (cli/main.ts, bundled for Node 20) running `provision` in a child process. */
let cli: { file: string; remove(): void };
let dir: string;

beforeAll(async () => {
  cli = await bundleEntry('cli/main.ts', 'clockface');
  dir = mkdtempSync(join(tmpdir(), 'cf-prov-cli-'));
});
afterAll(() => {
  cli?.remove();
  rmSync(dir, { recursive: true, force: true });
});

function clockface(args: string[], env: NodeJS.ProcessEnv = {}) {
  // A deadline: a hung child would block this test's event loop, which no test timeout ends.
  const r = spawnSync(process.execPath, [cli.file, ...args], { cwd: projectRoot, encoding: 'utf8', env: { PATH: process.env.PATH, ...env }, timeout: 120_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('clockface provision (child process)', () => {
  it('is wired into the clockface command and prints its usage', () => {
    const r = clockface(['provision', '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('Usage: clockface provision <command>');
    expect(clockface(['provision']).code).toBe(2);
    const bad = clockface(['provision', 'tenant', 'init', '--out', dir, '--tenant', 'acme', '--passphrase', 'x']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/Unknown option '--passphrase'/);
  });

  it('puts progress on stderr and one JSON result on stdout, keys 0600, no key material anywhere', () => {
    const out = join(dir, 'acme');
    const r = clockface(['provision', 'tenant', 'init', '--out', out, '--tenant', 'acme']);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain('wrote tenant/ca.key (0600)');
    const lines = r.stdout.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0]!)).toMatchObject({ command: 'tenant init', tenant: 'acme', dryRun: false });
    expect(r.stdout + r.stderr).not.toMatch(/PRIVATE KEY/);
    expect(statSync(join(out, 'tenant', 'ca.key')).mode & 0o777).toBe(0o600);

    const bad = clockface(['provision', 'device', 'add', '--out', out, '--device', 'Door 1', '--gateway', 'site-1', '--profile', 'simulator']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/device id "Door 1" must be 1-63 lowercase letters/);
    expect(bad.stdout).toBe('');
  });

  it('lists hardware profiles, each valid for the terminal hardware schema', () => {
    const r = clockface(['provision', 'profiles']);
    expect(r.code).toBe(0);
    const { profiles } = JSON.parse(r.stdout) as { profiles: Record<string, unknown> };
    expect(Object.keys(profiles)).toEqual(PROFILE_NAMES);
    for (const [name, hw] of Object.entries(profiles)) expect(() => HardwareConfig.parse(hw), name).not.toThrow();
  });
});
