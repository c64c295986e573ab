import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { generateKeyPair, privateKeyToPem, rawPublicKey } from '../protocol/index.js';
import { readRecordFile } from './hardware/index.js';
import { createCertificateAuthority, issueCertificate } from '../provisioning/pki.js';
import { run } from './main.js';
import { bundleChild } from './test-support/bundle.js';

const dir = mkdtempSync(join(tmpdir(), 'cf-device-main-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('clockface device', () => {
  it('refuses a missing or bad config with a clear message and exit code 2', async () => {
    const errors: string[] = [];
    const orig = console.error;
    console.error = (m: string) => errors.push(String(m));
    try {
      expect(await run([])).toBe(2);
      const bad = join(dir, 'bad.json');
      writeFileSync(bad, JSON.stringify({ tenant: 'acme', device: 'd1', dataDir: 'data', mqtt: { url: 'mqtt://plain:1883' } }));
      expect(await run(['--config', bad])).toBe(2);
    } finally {
      console.error = orig;
    }
    expect(errors.join('\n')).toMatch(/usage: clockface device --config FILE/);
    expect(errors.join('\n')).toMatch(/mqtts/);
  });

  it('starts from a bundle, and on SIGTERM leaves the relay at rest and exits 0', async () => {
    const ca = await createCertificateAuthority({ tenant: 'acme' });
    const cert = await issueCertificate({ ca, tenant: 'acme', role: 'device', id: 'd1' });
    const files: Record<string, string> = {
      'ca.crt': ca.certPem,
      'device.crt': cert.certPem,
      'device.key': cert.keyPem,
      'device-signing.key': privateKeyToPem(generateKeyPair('ed25519')),
      'device-sealing.key': privateKeyToPem(generateKeyPair('x25519')),
      'cloud-sealing.pub': rawPublicKey(generateKeyPair('x25519').publicKey).toString('base64'),
      'admin-signing.pub': rawPublicKey(generateKeyPair('ed25519').publicKey).toString('base64'),
      'card-pepper.key': Buffer.alloc(32, 7).toString('base64'),
    };
    for (const [n, t] of Object.entries(files)) writeFileSync(join(dir, n), t, { mode: 0o600 });
    const config = join(dir, 'config.json');
    writeFileSync(
      config,
      JSON.stringify({
        tenant: 'acme',
        device: 'd1',
        dataDir: 'data',
        // Nothing listens here: the terminal must run (offline) anyway.
        mqtt: { url: 'mqtts://127.0.0.1:1' },
        hardware: { gpio: { driver: 'simulator', recordFile: 'gpio.jsonl' }, pins: { relay: 17 } },
        ops: { port: 0 },
      }),
    );
    const child = await bundleChild('device-child');
    try {
      const proc = spawn(process.execPath, [child.file, '--config', config], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, NOTIFY_SOCKET: '' } });
      let err = '';
      proc.stderr.on('data', (d: Buffer) => (err += d.toString()));
      for (let i = 0; i < 500 && !err.includes('terminal running'); i++) await new Promise((r) => setTimeout(r, 20));
      expect(err).toContain('terminal running');
      const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
      proc.kill('SIGTERM');
      expect(await exited).toBe(0);
      const relay = readRecordFile(join(dir, 'gpio.jsonl')).filter((r) => r.pin === 17);
      expect(relay.at(-1)?.level).toBe(0);
    } finally {
      child.remove();
    }
  });
});
