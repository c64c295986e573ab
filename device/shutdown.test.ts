import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cardHash, hashPin, verifyAndOpen, DeviceEvent, publicKeyRef, rawPublicKey } from '../protocol/index.js';
import { createCertificateAuthority, issueCertificate } from '../provisioning/pki.js';
import { readRecordFile } from './hardware/index.js';
import { startPty, spawnTerminal, until, writeTerminalBundle } from './test-support/terminal-process.js';
import { opaqueGroup, opaqueSubject } from '../protocol/fixtures.js';

/*
 * SIGTERM while a decision is in flight (the terminal waits for a PIN): the service stops its
 * triggers, lets the decision finish (the prompt ends as a recorded timeout), then puts the
 * relay at rest and closes the store, and exits 0. A punch is whole in the outbox or absent.
 */
const dir = mkdtempSync(join(tmpdir(), 'cf-shutdown-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('graceful shutdown', () => {
  it('SIGTERM in the middle of a decision: the punch is recorded whole, the relay rests, exit 0', async () => {
    const ca = await createCertificateAuthority({ tenant: 'acme' });
    const cert = await issueCertificate({ ca, tenant: 'acme', role: 'device', id: 'door-1' });
    const bundle = writeTerminalBundle(join(dir, 'bundle'), { ca: ca.certPem, cert: cert.certPem, key: cert.keyPem });
    let store = bundle.openStore();
    store.upsertSubject({ subject: opaqueSubject('s-pin'), cardHashes: [cardHash(bundle.pepper, '5150')], pinHash: hashPin(bundle.pepper, '1357'), faceConsent: false, accessGroups: [opaqueGroup('staff')], suspended: false }, null);
    store.close();
    const pty = await startPty(dir);
    const terminal = await spawnTerminal(bundle, {
      tenant: 'acme',
      device: 'door-1',
      mode: 'access',
      dataDir: 'data',
      mqtt: { url: 'mqtts://127.0.0.1:1' },
      hardware: {
        camera: { driver: 'none' },
        gpio: { driver: 'simulator', recordFile: 'gpio.jsonl' },
        reader: { driver: 'serial', path: pty.port, protocol: 'line', lineFormat: 'decimal', repeatWindowMs: 0 },
        pins: { relay: 17, greenLed: 22, redLed: 23, buzzer: 24 },
      },
      policy: { credentials: 'card+face', pinTimeoutMs: 60_000, access: { door: 'main', groups: { [opaqueGroup('staff')]: 'always' } } },
      faceTrigger: { scanMs: 0 },
      ops: { port: 0 },
      log: { level: 'debug' },
    });
    try {
      pty.write('5150');
      await until(() => terminal.log().includes('"screen":"enter-pin"'), 'the PIN prompt');
      terminal.proc.kill('SIGTERM');
      expect(await terminal.exited).toBe(0);
      const relay = readRecordFile(join(bundle.dir, 'gpio.jsonl')).filter((r) => r.pin === 17);
      expect(relay.at(-1)?.level).toBe(0);
      expect(relay.some((r) => r.level === 1)).toBe(false); // nobody was let in
      store = bundle.openStore();
      const queued = store.pending(10).map((e) =>
        verifyAndOpen(e.envelope, {
          expect: { kind: 'event', tenant: 'acme' },
          signers: () => publicKeyRef('ed25519', rawPublicKey(bundle.deviceSigning.publicKey)),
          recipientKeys: [bundle.cloudSealing],
          maxAgeMs: 60_000,
          maxFutureMs: 60_000,
          schema: DeviceEvent,
        }).body,
      );
      store.close();
      expect(queued).toHaveLength(1);
      expect(queued[0]).toMatchObject({ type: 'punch', subject: opaqueSubject('s-pin'), credential: 'card+pin', decision: 'denied', reasons: ['timeout'] });
    } finally {
      terminal.proc.kill('SIGKILL');
      terminal.remove();
      await pty.close();
    }
  }, 60_000);
});
