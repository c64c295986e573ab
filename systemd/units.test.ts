import { spawnSync } from 'node:child_process';
import { chmodSync, cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CARD_PEPPER_CREDENTIAL } from '../device/card-pepper.js';
import { requireTool } from '../tests/support/tools.js';

/**
 * The unit files: `systemd-analyze verify` against a private root (this machine's systemd
 * unit library, our units, and a stand-in /usr/bin/clockface so ExecStart resolves), and the
 * hardening the issue lists, option by option.
 */
const here = dirname(fileURLToPath(import.meta.url));
requireTool('systemd-analyze');
const UNITS = ['clockface-device.service', 'clockface-gateway.service', 'clockface-cloud.service'] as const;

/** [Section] → key → every value it is given (repeated keys accumulate, as systemd's lists do). */
function parseUnit(text: string): Map<string, Map<string, string[]>> {
  const sections = new Map<string, Map<string, string[]>>();
  let current: Map<string, string[]> | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const header = /^\[(.+)\]$/.exec(line);
    if (header) {
      current = new Map();
      sections.set(header[1]!, current);
      continue;
    }
    const eq = line.indexOf('=');
    if (!current || eq < 0) throw new Error(`unparseable line: ${line}`);
    const key = line.slice(0, eq);
    current.set(key, [...(current.get(key) ?? []), line.slice(eq + 1)]);
  }
  return sections;
}

const units = Object.fromEntries(UNITS.map((u) => [u, parseUnit(readFileSync(join(here, u), 'utf8'))]));
const service = (u: (typeof UNITS)[number]) => units[u]!.get('Service')!;

let root: string;
beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'cf-sdroot-'));
  // verify needs the stock targets (sysinit.target, network-online.target, …) inside the root.
  cpSync('/usr/lib/systemd/system', join(root, 'usr/lib/systemd/system'), { recursive: true, verbatimSymlinks: true });
  mkdirSync(join(root, 'etc/systemd/system'), { recursive: true });
  mkdirSync(join(root, 'usr/bin'), { recursive: true });
  // Stand-ins for the binaries the units run (ExecStart, ExecReload).
  mkdirSync(join(root, 'bin'), { recursive: true });
  for (const bin of ['usr/bin/clockface', 'bin/kill']) {
    writeFileSync(join(root, bin), '#!/bin/sh\nexit 0\n');
    chmodSync(join(root, bin), 0o755);
  }
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

function verify(unit: string, text: string) {
  writeFileSync(join(root, 'etc/systemd/system', unit), text);
  return spawnSync('systemd-analyze', ['verify', `--root=${root}`, unit], { encoding: 'utf8' });
}

describe('systemd units', () => {
  it.each(UNITS)('%s passes systemd-analyze verify with no warnings', (unit) => {
    const r = verify(unit, readFileSync(join(here, unit), 'utf8'));
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });

  it('verify really checks: a misspelt option or a missing binary fails', () => {
    const text = readFileSync(join(here, 'clockface-gateway.service'), 'utf8');
    const typo = verify('clockface-typo.service', text.replace('NoNewPrivileges=yes', 'NoNewPrivileges=maybe'));
    expect(typo.stderr).toMatch(/clockface-typo\.service:\d+: Failed to parse boolean value/);
    const missing = verify('clockface-missing.service', text.replace(/\/usr\/bin\/clockface/g, '/usr/bin/clockface-nowhere'));
    expect(missing.status).not.toBe(0);
    expect(missing.stderr).toMatch(/clockface-nowhere.*(not executable|No such file)/);
  });

  it.each(UNITS)('%s is Type=notify with a watchdog, restarts on failure and logs to the journal', (unit) => {
    const s = service(unit);
    expect(s.get('Type')).toEqual(['notify']);
    expect(Number(s.get('WatchdogSec')?.[0])).toBeGreaterThan(0);
    expect(s.get('Restart')).toEqual(['on-failure']);
    expect(s.get('StandardOutput')).toEqual(['journal']);
    expect(s.get('StandardError')).toEqual(['journal']);
    expect(s.get('ExecStart')?.[0]).toMatch(/^\/usr\/bin\/clockface (device|gateway|cloud) --config \/etc\/clockface\//);
    expect(units[unit]!.get('Install')?.get('WantedBy')).toEqual(['multi-user.target']);
  });

  it.each(UNITS)('%s runs as its own user with the hardening the issue lists', (unit) => {
    const s = service(unit);
    const role = unit.replace(/^clockface-|\.service$/g, '');
    expect(s.get('User')).toEqual([`clockface-${role}`]);
    for (const [key, value] of [
      ['NoNewPrivileges', 'yes'],
      ['ProtectSystem', 'strict'],
      ['ProtectHome', 'yes'],
      ['PrivateTmp', 'yes'],
      ['DevicePolicy', 'closed'],
      ['RestrictSUIDSGID', 'yes'],
      ['CapabilityBoundingSet', ''],
    ] as const) {
      expect(s.get(key), `${unit} ${key}`).toEqual([value]);
    }
    // Writable only where its data lives.
    const writable = s.get('ReadWritePaths') ?? [];
    expect(writable[0]).toBe(`/var/lib/clockface/${role}`);
    expect(writable.slice(1).every((p) => role === 'device' && /^-\/sys\/(class\/gpio|devices\/platform)$/.test(p))).toBe(true);
    // Keys arrive as credentials, and the config is pointed at them. (The cloud's optional TLS
    // key and the gateway's cloud token come through install.sh's drop-ins; see install.test.ts.)
    // The MQTT TLS key is the exception: it is re-read on reload, which systemd 252 does not
    // refresh credentials for.
    const creds = s.get('LoadCredential') ?? [];
    expect(creds.length > 0).toBe(role === 'device');
    expect(creds.some((c) => c.startsWith(`${role}.key:`))).toBe(false);
    for (const c of creds) expect(c).toMatch(/^[a-z.-]+\.key:\/etc\/clockface\/[a-z]+\/[a-z.-]+\.key$/);
    for (const c of creds) expect((s.get('Environment') ?? []).some((e) => e.endsWith(`=%d/${c.split(':')[0]}`))).toBe(true);
    // Nothing points the config at a plain pepper file: the terminal reads its credential itself.
    expect((s.get('Environment') ?? []).some((e) => /PEPPER/.test(e))).toBe(false);
    expect(creds.some((c) => /pepper/.test(c))).toBe(false);
  });

  it('hands the terminal its card pepper only as an encrypted credential, named as the service reads it', () => {
    const s = service('clockface-device.service');
    expect(s.get('LoadCredentialEncrypted')).toEqual([`${CARD_PEPPER_CREDENTIAL}:/etc/clockface/device/card-pepper.cred`]);
    for (const u of ['clockface-gateway.service', 'clockface-cloud.service'] as const) expect(service(u).get('LoadCredentialEncrypted')).toBeUndefined();
  });

  it.each(['clockface-device.service', 'clockface-gateway.service'] as const)('%s reloads its TLS credentials on `systemctl reload` (SIGHUP)', (unit) => {
    expect(service(unit).get('ExecReload')).toEqual(['/bin/kill -HUP $MAINPID']);
  });

  it('lets the terminal reach only the serial port, camera and GPIO, with the matching groups', () => {
    const s = service('clockface-device.service');
    expect(s.get('SupplementaryGroups')).toEqual(['gpio dialout video']);
    const allowed = (s.get('DeviceAllow') ?? []).map((d) => d.split(' ')[0]);
    expect(allowed.sort()).toEqual(
      ['char-ttyS', 'char-ttyAMA', 'char-ttyUSB', 'char-ttyACM', 'char-video4linux', 'char-media', 'char-dma_heap', 'char-gpiochip'].sort(),
    );
    expect(s.get('ExecStopPost')).toEqual(['/usr/bin/clockface hw reset-outputs --config /etc/clockface/device/config.json']);
    for (const u of ['clockface-gateway.service', 'clockface-cloud.service'] as const) {
      expect(service(u).get('DeviceAllow')).toBeUndefined();
      expect(service(u).get('PrivateDevices')).toEqual(['yes']);
    }
  });
});
