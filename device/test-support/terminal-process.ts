import { closeSync, existsSync, mkdirSync, openSync, readFileSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { spawn, type ChildProcess } from 'node:child_process';
import { generateKeyPair, privateKeyToPem, rawPublicKey, type KeyPair } from '../../protocol/index.js';
import { DeviceStore } from '../store.js';
import { bundleChild } from './bundle.js';
import { requireTool } from '../../tests/support/tools.js';

/*
 * A terminal as a real process (`clockface device --config FILE`, bundled by bundleChild), with
 * its card reader on a socat pseudo-terminal and its GPIO simulator recording to a file. For
 * tests that must see what the process does on its own: survive a fault, stop on SIGTERM,
 * come back after a restart.
 */

export async function until(cond: () => boolean, what: string, tries = 1500): Promise<void> {
  for (let i = 0; i < tries && !cond(); i++) await new Promise((r) => setTimeout(r, 20));
  if (!cond()) throw new Error(`gave up waiting for ${what}`);
}

/** A real pseudo-terminal pair: `port` is the reader's serial device, `write` types a card line. */
export async function startPty(dir: string): Promise<{ port: string; write(line: string): void; close(): Promise<void> }> {
  const port = join(dir, 'reader-port');
  const host = join(dir, 'reader-host');
  requireTool('socat');
  const socat = spawn('socat', [`pty,raw,echo=0,link=${port}`, `pty,raw,echo=0,link=${host}`], { stdio: 'ignore' });
  await until(() => existsSync(port) && existsSync(host), 'socat pty links');
  const fd = openSync(host, 'w');
  return {
    port,
    write: (line) => void writeSync(fd, `${line}\r\n`),
    async close() {
      closeSync(fd);
      if (socat.exitCode !== null) return;
      const gone = new Promise((r) => socat.once('exit', r));
      socat.kill('SIGTERM');
      await gone;
    },
  };
}

export interface TerminalBundle {
  dir: string;
  pepper: Buffer;
  admin: KeyPair;
  cloudSealing: KeyPair;
  deviceSigning: KeyPair;
  deviceSealing: KeyPair;
  /** Opens the terminal's own store (same file, same data key) while the process is not running. */
  openStore(dataDir?: string): DeviceStore;
}

/** The key files a device bundle holds, with the given TLS identity. */
export function writeTerminalBundle(dir: string, tls: { ca: string; cert: string; key: string }): TerminalBundle {
  mkdirSync(dir, { recursive: true });
  const b = {
    pepper: randomBytes(32),
    admin: generateKeyPair('ed25519'),
    cloudSealing: generateKeyPair('x25519'),
    deviceSigning: generateKeyPair('ed25519'),
    deviceSealing: generateKeyPair('x25519'),
  };
  const files: Record<string, string> = {
    'ca.crt': tls.ca,
    'device.crt': tls.cert,
    'device.key': tls.key,
    'device-signing.key': privateKeyToPem(b.deviceSigning),
    'device-sealing.key': privateKeyToPem(b.deviceSealing),
    'cloud-sealing.pub': rawPublicKey(b.cloudSealing.publicKey).toString('base64'),
    'admin-signing.pub': rawPublicKey(b.admin.publicKey).toString('base64'),
    'card-pepper.key': b.pepper.toString('base64'),
  };
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text, { mode: 0o600 });
  return {
    dir,
    ...b,
    openStore(dataDir = join(dir, 'data')) {
      mkdirSync(dataDir, { recursive: true, mode: 0o700 });
      const keyFile = join(dataDir, 'data.key');
      if (!existsSync(keyFile)) writeFileSync(keyFile, randomBytes(32).toString('base64'), { mode: 0o600 });
      return new DeviceStore(join(dataDir, 'device.db'), Buffer.from(readFileSync(keyFile, 'utf8').trim(), 'base64'));
    },
  };
}

export interface TerminalProcess {
  proc: ChildProcess;
  /** Everything the process logged (pino JSON lines on stderr). */
  log(): string;
  exited: Promise<number | null>;
  remove(): void;
}

/** Writes `config` next to the bundle and starts the terminal (`env` adds to the environment, e.g. CREDENTIALS_DIRECTORY); resolves once it runs. */
export async function spawnTerminal(bundle: TerminalBundle, config: Record<string, unknown>, env: Record<string, string> = {}): Promise<TerminalProcess> {
  const file = join(bundle.dir, 'config.json');
  writeFileSync(file, JSON.stringify(config));
  const child = await bundleChild('device-child');
  const proc = spawn(process.execPath, [child.file, '--config', file], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, NOTIFY_SOCKET: '', ...env } });
  let err = '';
  proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
  await until(() => err.includes('terminal running') || proc.exitCode !== null, 'terminal running', 3000);
  if (!err.includes('terminal running')) {
    proc.kill('SIGKILL');
    child.remove();
    throw new Error(`terminal did not start:\n${err}`);
  }
  return { proc, log: () => err, exited, remove: () => child.remove() };
}
