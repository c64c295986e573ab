import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cardHash } from '../protocol/index.js';
import { createCertificateAuthority, issueCertificate } from '../provisioning/pki.js';
import { hardwareProfile } from '../provisioning/profiles.js';
import { parityOk, wiegandForCard, bitsToString } from './hardware/wiegand/encoder.js';
import { readRecordFile, type EdgeRecord } from './hardware/index.js';
import { startPty, spawnTerminal, until, writeTerminalBundle } from './test-support/terminal-process.js';
import { opaqueGroup, opaqueSubject } from '../protocol/fixtures.js';

/*
 * The pi-wiegand build (no relay: an external panel owns the door) as a real process: a grant
 * in access mode used to call pulseRelay, throw "no relay pin configured" as an unhandled
 * rejection and end the service before the frame left. Now the frame goes out and the
 * process keeps serving.
 */
const dir = mkdtempSync(join(tmpdir(), 'cf-wiegand-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Bits of each frame on D0 (pin 20) / D1 (pin 21), read from the falling edges in the record. */
function frames(records: EdgeRecord[]): string[] {
  const lows = records.filter((r) => (r.pin === 20 || r.pin === 21) && r.edge && r.level === 0);
  const out: string[] = [];
  let bits = '';
  let last = 0;
  for (const r of lows) {
    if (bits && r.t - last > 20) {
      out.push(bits);
      bits = '';
    }
    bits += r.pin === 21 ? '1' : '0';
    last = r.t;
  }
  if (bits) out.push(bits);
  return out;
}

describe('a pi-wiegand terminal', () => {
  it('grants in access mode, sends the card as a Wiegand frame, and keeps running', async () => {
    const ca = await createCertificateAuthority({ tenant: 'acme' });
    const cert = await issueCertificate({ ca, tenant: 'acme', role: 'device', id: 'gate-1' });
    const bundle = writeTerminalBundle(join(dir, 'bundle'), { ca: ca.certPem, cert: cert.certPem, key: cert.keyPem });
    const store = bundle.openStore();
    store.upsertSubject({ subject: opaqueSubject('s-dana'), cardHashes: [cardHash(bundle.pepper, '4660')], pinHash: null, faceConsent: false, accessGroups: [opaqueGroup('staff')], suspended: false }, null);
    store.close();
    const pty = await startPty(dir);
    const profile = hardwareProfile('pi-wiegand');
    expect(profile.pins.relay).toBeUndefined();
    const terminal = await spawnTerminal(bundle, {
      tenant: 'acme',
      device: 'gate-1',
      mode: 'access',
      dataDir: 'data',
      mqtt: { url: 'mqtts://127.0.0.1:1' }, // offline: decisions work from the local store
      hardware: {
        ...profile,
        // The profile's pins and Wiegand output; the simulator and a pty stand in for the Pi's lines.
        camera: { driver: 'none' },
        gpio: { driver: 'simulator', recordFile: 'gpio.jsonl' },
        reader: { driver: 'serial', path: pty.port, protocol: 'line', lineFormat: 'decimal', repeatWindowMs: 0 },
      },
      // The policy says nothing about Wiegand: a fitted output is used by default.
      policy: { credentials: 'card-only', access: { door: 'gate', groups: { [opaqueGroup('staff')]: 'always' } } },
      faceTrigger: { scanMs: 0 },
      ops: { port: 0 },
    });
    try {
      const record = () => readRecordFile(join(bundle.dir, 'gpio.jsonl'));
      pty.write('4660');
      await until(() => frames(record()).length >= 1 && terminal.log().includes('"punch"'), 'a Wiegand frame');
      // A badge while the terminal is still busy with the last one is ignored, as at a real
      // reader: badge again until the terminal, idle once more, answers with a second frame.
      for (let attempt = 0; attempt < 20 && frames(record()).length < 2; attempt++) {
        pty.write('4660');
        await until(() => frames(record()).length >= 2, 'a second frame', 50).catch(() => undefined);
      }
      await until(() => frames(record()).length >= 2, 'a second frame: the terminal is idle again');
      const sent = frames(record());
      expect(sent[0]).toBe(bitsToString(wiegandForCard(4660, 26)));
      expect(parityOk(sent[0]!.split('').map(Number) as (0 | 1)[])).toBe(true);
      expect(terminal.proc.exitCode).toBeNull();
      expect(terminal.log()).not.toMatch(/no relay pin configured|trigger failed|actuation failed/);
      terminal.proc.kill('SIGTERM');
      expect(await terminal.exited).toBe(0);
    } finally {
      terminal.proc.kill('SIGKILL');
      terminal.remove();
      await pty.close();
    }
  }, 60_000);
});
