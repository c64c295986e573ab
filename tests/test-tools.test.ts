import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { requireTool, TEST_TOOLS } from './support/tools.js';

/**
 * scripts/test-tools.sh (what `npm test` runs first) and requireTool (what a test calls): on a
 * machine that lacks a tool both say which one and how to install it, and neither lets a
 * missing tool pass. PATH is a folder of stand-in executables, so "installed" is exact.
 */
const script = resolve(import.meta.dirname, '..', 'scripts', 'test-tools.sh');
const bin = mkdtempSync(join(tmpdir(), 'cf-tools-'));
afterAll(() => rmSync(bin, { recursive: true, force: true }));

const ALL = ['socat', 'mosquitto', 'mosquitto_pub', 'mosquitto_sub', 'shellcheck', 'systemd-analyze', 'id'];
function pathWith(tools: string[]): string {
  const dir = mkdtempSync(join(bin, 'path-'));
  for (const t of tools) {
    writeFileSync(join(dir, t), t === 'id' ? '#!/bin/sh\necho 1000\n' : '#!/bin/sh\nexit 0\n');
    chmodSync(join(dir, t), 0o755);
  }
  return dir;
}
const check = (path: string) => spawnSync('/bin/bash', [script, '--check'], { encoding: 'utf8', env: { PATH: path } });

describe('scripts/test-tools.sh', () => {
  it('is quiet and succeeds when every tool is there', () => {
    const r = check(pathWith(ALL));
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });

  it('names what is missing, the Debian packages and the command that installs them', () => {
    const r = check(pathWith(ALL.filter((t) => t !== 'socat' && t !== 'mosquitto_sub' && t !== 'shellcheck')));
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/missing socat mosquitto_sub shellcheck \(Debian packages: socat mosquitto-clients shellcheck\)/);
    expect(r.stderr).toMatch(/sudo apt-get install -y --no-install-recommends socat mosquitto-clients shellcheck/);
  });
});

describe('requireTool', () => {
  it('passes for a tool on PATH and fails at once, with the install command, for one that is not', () => {
    const saved = process.env.PATH;
    try {
      process.env.PATH = pathWith(['socat']);
      expect(() => requireTool('socat')).not.toThrow();
      expect(() => requireTool('socat', 'mosquitto_pub', 'shellcheck')).toThrow(
        /mosquitto_pub, shellcheck not found on PATH.*scripts\/test-tools\.sh.*apt-get install -y mosquitto-clients shellcheck/,
      );
    } finally {
      process.env.PATH = saved;
    }
  });

  it('knows the same packages as the script', () => {
    const text = spawnSync('/bin/cat', [script], { encoding: 'utf8' }).stdout;
    for (const [tool, pkg] of Object.entries(TEST_TOOLS)) expect(text).toContain(`"${tool}=${pkg}"`);
  });
});
