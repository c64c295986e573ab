import { createCipheriv, createDecipheriv, randomBytes, scrypt as scryptCb, type ScryptOptions } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { extractTarGz, tarGzFolder } from './archive.js';
import { ProvisionError } from './output.js';

/**
 * Encrypted backup of the tenant folder: tar.gz, sealed with AES-256-GCM under a key derived
 * from a passphrase with scrypt. File layout: one JSON header line (format, KDF parameters,
 * salt, nonce) then ciphertext and the 16-byte tag; the header is the GCM associated data, so
 * tampering with the parameters fails like tampering with the data. The passphrase comes
 * from a file or the environment, never argv (argv is visible to every user via ps).
 */
const MAGIC = 'clockface-tenant-backup';
const MIN_PASSPHRASE = 12;

export interface ScryptParams {
  N: number;
  r: number;
  p: number;
}
/** 2^17 × 8 × 1: ~128 MiB and well under a second on a Pi 4; the cost an offline guesser pays per try. */
export const DEFAULT_SCRYPT: ScryptParams = { N: 2 ** 17, r: 8, p: 1 };

interface Header {
  format: typeof MAGIC;
  v: 1;
  kdf: 'scrypt';
  N: number;
  r: number;
  p: number;
  salt: string;
  nonce: string;
}

function deriveKey(passphrase: string, salt: Buffer, params: ScryptParams): Promise<Buffer> {
  const opts: ScryptOptions = { N: params.N, r: params.r, p: params.p, maxmem: 256 * params.N * params.r + 32 * 1024 * 1024 };
  return new Promise((resolve, reject) => scryptCb(passphrase.normalize('NFC'), salt, 32, opts, (err, key) => (err ? reject(err) : resolve(key))));
}

export function checkPassphrase(passphrase: string): string {
  const p = passphrase.replace(/\r?\n$/, '');
  if (p.length < MIN_PASSPHRASE) throw new ProvisionError(`the backup passphrase must be at least ${MIN_PASSPHRASE} characters`);
  return p;
}

/** From --passphrase-file FILE, else CLOCKFACE_BACKUP_PASSPHRASE. */
export function readPassphrase(file: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  if (file) {
    if (!existsSync(file)) throw new ProvisionError(`passphrase file ${file} does not exist`);
    return checkPassphrase(readFileSync(file, 'utf8'));
  }
  const fromEnv = env.CLOCKFACE_BACKUP_PASSPHRASE;
  if (fromEnv) return checkPassphrase(fromEnv);
  throw new ProvisionError('a backup needs a passphrase: --passphrase-file FILE or CLOCKFACE_BACKUP_PASSPHRASE (never on the command line)');
}

export async function encryptFolder(parentDir: string, folderName: string, passphrase: string, params = DEFAULT_SCRYPT): Promise<Buffer> {
  const plain = await tarGzFolder(parentDir, folderName);
  const salt = randomBytes(16);
  const nonce = randomBytes(12);
  const header: Header = { format: MAGIC, v: 1, kdf: 'scrypt', ...params, salt: salt.toString('base64'), nonce: nonce.toString('base64') };
  const headerLine = Buffer.from(`${JSON.stringify(header)}\n`);
  const key = await deriveKey(passphrase, salt, params);
  const cipher = createCipheriv('aes-256-gcm', key, nonce);
  cipher.setAAD(headerLine);
  const body = Buffer.concat([cipher.update(plain), cipher.final()]);
  return Buffer.concat([headerLine, body, cipher.getAuthTag()]);
}

export async function decryptBackup(backup: Buffer, passphrase: string): Promise<Buffer> {
  const nl = backup.indexOf(0x0a);
  if (nl < 0 || nl > 1024) throw new ProvisionError('not a Clockface tenant backup');
  const headerLine = backup.subarray(0, nl + 1);
  let header: Header;
  try {
    header = JSON.parse(headerLine.toString('utf8')) as Header;
  } catch {
    throw new ProvisionError('not a Clockface tenant backup');
  }
  if (header.format !== MAGIC || header.v !== 1 || header.kdf !== 'scrypt') throw new ProvisionError('not a Clockface tenant backup (or a newer format)');
  if (![header.N, header.r, header.p].every(Number.isInteger) || header.N > 2 ** 20 || header.r > 32 || header.p > 16) {
    throw new ProvisionError('backup KDF parameters are out of range');
  }
  const rest = backup.subarray(nl + 1);
  if (rest.length < 16) throw new ProvisionError('backup is truncated');
  const key = await deriveKey(passphrase, Buffer.from(header.salt, 'base64'), header);
  const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(header.nonce, 'base64'));
  decipher.setAAD(headerLine);
  decipher.setAuthTag(rest.subarray(rest.length - 16));
  try {
    return Buffer.concat([decipher.update(rest.subarray(0, rest.length - 16)), decipher.final()]);
  } catch {
    throw new ProvisionError('cannot open the backup: wrong passphrase or damaged file');
  }
}

export async function restoreBackup(backup: Buffer, passphrase: string, intoDir: string): Promise<void> {
  await extractTarGz(await decryptBackup(backup, passphrase), intoDir);
}
