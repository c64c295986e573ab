import { chmodSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import sharp from 'sharp';
import { generateKeyPair, privateKeyToPem, type KeyPair } from '../../protocol/index.js';

/**
 * Test fixtures shared by the cloud's tests and benchmark: a tenant keyring on disk in the
 * layout `clockface provision tenant init` writes, device keys, and real JPEGs made with sharp.
 */
export interface TenantKeyFiles {
  dir: string;
  adminSigning: KeyPair;
  cloudSealing: KeyPair;
  pepper: Buffer;
}

export function writeTenantKeys(root: string, tenant: string): TenantKeyFiles {
  const dir = join(root, `keys-${tenant}`, 'tenant');
  mkdirSync(dir, { recursive: true });
  const adminSigning = generateKeyPair('ed25519');
  const cloudSealing = generateKeyPair('x25519');
  const pepper = randomBytes(32);
  const write = (name: string, text: string, secret: boolean) => {
    writeFileSync(join(dir, name), text, { mode: secret ? 0o600 : 0o644 });
    if (secret) chmodSync(join(dir, name), 0o600);
  };
  write('admin-signing.key', privateKeyToPem(adminSigning), true);
  write('admin-signing.pub', adminSigning.publicRaw.toString('base64'), false);
  write('cloud-sealing.key', privateKeyToPem(cloudSealing), true);
  write('cloud-sealing.pub', cloudSealing.publicRaw.toString('base64'), false);
  write('card-pepper.key', pepper.toString('base64'), true);
  return { dir, adminSigning, cloudSealing, pepper };
}

export function tempDir(prefix = 'cf-cloud-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export interface DeviceKeys {
  signing: KeyPair;
  sealing: KeyPair;
}

export function deviceKeys(): DeviceKeys {
  return { signing: generateKeyPair('ed25519'), sealing: generateKeyPair('x25519') };
}

/**
 * A real JPEG of about `targetBytes` (noise compresses badly, so size tracks pixel count),
 * with EXIF metadata embedded so tests can check the vault strips it.
 */
export async function makeJpeg(opts: { width?: number; height?: number; seed?: number; exif?: boolean; detailWidth?: number } = {}): Promise<Buffer> {
  const outWidth = opts.width ?? 160;
  const outHeight = opts.height ?? 120;
  // Noise drawn at detailWidth and scaled up gives photo-like smoothness (and photo-like sizes: 640x480 from 40 wide is ~43 KB).
  const width = opts.detailWidth ?? outWidth;
  const height = Math.max(1, Math.round((width * outHeight) / outWidth));
  const pixels = Buffer.alloc(width * height * 3);
  let x = (opts.seed ?? 1) >>> 0 || 1;
  for (let i = 0; i < pixels.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    pixels[i] = x & 0xff;
  }
  let img = sharp(pixels, { raw: { width, height, channels: 3 } })
    .resize(outWidth, outHeight, { kernel: 'cubic' })
    .jpeg({ quality: 80 });
  if (opts.exif) img = img.withExif({ IFD0: { Artist: 'Jane Example', ImageDescription: 'GPS 51.5N 0.12W badge 4711' } });
  return img.toBuffer();
}
