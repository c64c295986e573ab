import { afterAll, describe, expect, it } from 'vitest';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { scryptSync, randomBytes } from 'node:crypto';
import { cardHash, legacyCardHash } from '../protocol/index.js';
import { createCertificateAuthority, issueCertificate } from '../provisioning/pki.js';
import { pulses, readRecordFile } from './hardware/index.js';
import { CardPepperError, loadCardPepper } from './card-pepper.js';
import { startPty, spawnTerminal, until, writeTerminalBundle } from './test-support/terminal-process.js';
import { opaqueGroup, opaqueSubject } from '../protocol/fixtures.js';

/*
 * The card pepper never sits in the config or the database: systemd decrypts it into
 * $CREDENTIALS_DIRECTORY/card-pepper; a file named in the config is only the development
 * fallback. The process test lays the credentials folder out as systemd does (0500 folder, 0400
 * file, the bundle without its pepper file) and runs the terminal from it, with a database that
 * release 1 filled: the badge and the PIN still work and leave v2 hashes behind.
 */
const dir = mkdtempSync(join(tmpdir(), 'cf-card-pepper-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A credentials folder as systemd lays one out for LoadCredential(Encrypted)=card-pepper:… */
function credentialsDir(name: string, pepperBase64: string): string {
  const creds = join(dir, name);
  mkdirSync(creds);
  writeFileSync(join(creds, 'card-pepper'), `${pepperBase64}\n`, { mode: 0o400 });
  chmodSync(creds, 0o500);
  return creds;
}

describe('loadCardPepper', () => {
  const pepper = randomBytes(32);
  it('reads the systemd credential first, the configured file only as a fallback', () => {
    const creds = credentialsDir('creds-first', pepper.toString('base64'));
    const file = join(dir, 'fallback.key');
    writeFileSync(file, randomBytes(32).toString('base64'));
    expect(loadCardPepper({ credentialsDir: creds, fallbackFile: file })).toMatchObject({ pepper, source: 'systemd-credential', path: join(creds, 'card-pepper') });
    expect(loadCardPepper({ credentialsDir: undefined, fallbackFile: file })).toMatchObject({ source: 'file', path: file });
    // A credentials folder without this credential (another unit's) falls back too.
    expect(loadCardPepper({ credentialsDir: join(dir, 'nowhere'), fallbackFile: file }).source).toBe('file');
  });

  it('refuses a missing or short pepper with a typed error that names where it looked', () => {
    const missing = () => loadCardPepper({ credentialsDir: join(dir, 'none'), fallbackFile: join(dir, 'none.key') });
    expect(missing).toThrow(CardPepperError);
    expect(missing).toThrow(/card-pepper\.missing: no card pepper: looked in .*none\/card-pepper, .*none\.key/);
    const short = credentialsDir('creds-short', randomBytes(8).toString('base64'));
    expect(() => loadCardPepper({ credentialsDir: short, fallbackFile: undefined })).toThrow(/card-pepper\.malformed/);
  });
});

describe('a terminal process with its pepper as a systemd credential', () => {
  it('has no pepper file in its folder, grants a release 1 badge and PIN, and leaves only v2 hashes', async () => {
    const ca = await createCertificateAuthority({ tenant: 'acme' });
    const cert = await issueCertificate({ ca, tenant: 'acme', role: 'device', id: 'door-1' });
    const bundle = writeTerminalBundle(join(dir, 'bundle'), { ca: ca.certPem, cert: cert.certPem, key: cert.keyPem });
    // What install.sh does: the pepper leaves the config folder for the (encrypted) credential.
    const creds = credentialsDir('credentials', readFileSync(join(bundle.dir, 'card-pepper.key'), 'utf8').trim());
    rmSync(join(bundle.dir, 'card-pepper.key'));
    // Release 1 wrote these: a bare HMAC card hash, and an unpeppered PIN hash.
    const salt = randomBytes(16);
    const oldPin = `scrypt$16384$8$1$${salt.toString('base64')}$${scryptSync('2468', salt, 32, { N: 16384, r: 8, p: 1 }).toString('base64')}`;
    let store = bundle.openStore();
    store.upsertSubject({ subject: opaqueSubject('s-card'), cardHashes: [legacyCardHash(bundle.pepper, '1001')], pinHash: null, faceConsent: false, accessGroups: [opaqueGroup('staff')], suspended: false }, null);
    store.upsertSubject({ subject: opaqueSubject('s-pin'), cardHashes: [legacyCardHash(bundle.pepper, '5150')], pinHash: oldPin, faceConsent: false, accessGroups: [opaqueGroup('staff')], suspended: false }, null);
    store.close();
    const pty = await startPty(dir);
    const config = {
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
      // Nobody here has face consent: card + face asks them for their PIN.
      policy: { credentials: 'card+face', pinFallback: true, pinTimeoutMs: 60_000, access: { door: 'main', pulseMs: 100, groups: { [opaqueGroup('staff')]: 'always' } } },
      faceTrigger: { scanMs: 0 },
      ops: { port: 0 },
      log: { level: 'debug' },
    };
    const terminal = await spawnTerminal(bundle, config, { CREDENTIALS_DIRECTORY: creds });
    try {
      expect(terminal.log()).toContain('card pepper read from the systemd credential');
      await until(() => terminal.log().includes('release 1 card hashes upgraded to v2'), 'the background upgrade');
      const relay = () => pulses(readRecordFile(join(bundle.dir, 'gpio.jsonl')).filter((r) => r.pid === terminal.proc.pid), 17, 1);
      pty.write('5150');
      await until(() => terminal.log().includes('"screen":"enter-pin"'), 'the PIN prompt');
      pty.write('2468#');
      await until(() => relay().length >= 1, 'the door opening for card + PIN');
      expect(terminal.log()).toContain('PIN hash upgraded from release 1');
      terminal.proc.kill('SIGTERM');
      expect(await terminal.exited).toBe(0);
      const log = terminal.log();
      for (const secret of ['2468', bundle.pepper.toString('base64')]) expect(log).not.toContain(secret);
    } finally {
      terminal.proc.kill('SIGKILL');
      terminal.remove();
      await pty.close();
    }
    store = bundle.openStore();
    const cards = (store.db.prepare('SELECT hash FROM card_hashes ORDER BY hash').all() as { hash: string }[]).map((r) => r.hash);
    expect(cards).toEqual([cardHash(bundle.pepper, '1001'), cardHash(bundle.pepper, '5150')].sort());
    expect(store.getSubject(opaqueSubject('s-pin'))!.pinHash).toMatch(/^p2\$/);
    store.close();

    // Without the credential, and with no pepper file beside the config, it does not start.
    await expect(spawnTerminal(bundle, config)).rejects.toThrow(/card-pepper\.missing/);
  }, 90_000);
});
