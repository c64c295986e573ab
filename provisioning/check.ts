import { X509Certificate, createPrivateKey } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { certificateIdentity } from '../protocol/cert-identity.js';
import { keyPairFromPem, publicKeyFromRaw } from '../protocol/index.js';
import { HardwareConfig } from '../protocol/hardware-config.js';
import { ProvisionError } from './output.js';

/**
 * `clockface provision check --bundle DIR`: proves a bundle can start its unit before anyone
 * climbs a ladder. Every file the config names exists, the certificate chains to the bundled
 * CA, is in date, carries the identity the config claims, and matches its private key;
 * private keys are 0600; a device's hardware section passes the terminal's schema.
 */
export interface BundleReport {
  role: 'device' | 'gateway' | 'integration';
  tenant: string;
  id: string;
  serial: string;
  notAfter: string;
}

export function checkBundle(dir: string, now = new Date()): BundleReport {
  const configPath = join(dir, 'config.json');
  if (!existsSync(configPath)) throw new ProvisionError(`${dir} has no config.json: not a bundle`);
  let config: Record<string, unknown>;
  try {
    config = JSON.parse(readFileSync(configPath, 'utf8')) as Record<string, unknown>;
  } catch (err) {
    throw new ProvisionError(`${configPath} is not valid JSON: ${(err as Error).message}`);
  }
  const role: BundleReport['role'] = typeof config.device === 'string' ? 'device' : typeof config.integration === 'string' ? 'integration' : 'gateway';
  const id = String(config[role]);
  const tenant = String(config.tenant);
  const mqtt = (config.mqtt ?? {}) as Record<string, unknown>;
  const file = (key: string, rel: unknown, secret = false): Buffer => {
    if (typeof rel !== 'string') throw new ProvisionError(`config ${key} is missing`);
    const path = resolve(dir, rel);
    if (!existsSync(path)) throw new ProvisionError(`bundle is incomplete: ${rel} (${key}) is missing`);
    if (secret && (statSync(path).mode & 0o077) !== 0) throw new ProvisionError(`${rel} must be readable by its owner only (chmod 600)`);
    return readFileSync(path);
  };

  const ca = new X509Certificate(file('mqtt.ca', mqtt.ca));
  const cert = new X509Certificate(file('mqtt.cert', mqtt.cert));
  const key = createPrivateKey(file('mqtt.key', mqtt.key, true));
  if (!cert.verify(ca.publicKey)) throw new ProvisionError('the certificate is not signed by the bundled CA');
  if (!cert.checkPrivateKey(key)) throw new ProvisionError('the private key does not belong to the certificate');
  if (Date.parse(cert.validTo) <= now.getTime()) throw new ProvisionError(`the certificate expired on ${cert.validTo}: run "provision rotate"`);
  if (Date.parse(cert.validFrom) > now.getTime()) throw new ProvisionError(`the certificate is not valid before ${cert.validFrom}: check the clock`);
  const identity = certificateIdentity(cert);
  if (!identity || identity.role !== role || identity.id !== id || identity.tenant !== tenant) {
    throw new ProvisionError(`the certificate is for ${identity ? `${identity.tenant}/${identity.role}/${identity.id}` : 'no Clockface identity'}, the config for ${tenant}/${role}/${id}`);
  }

  if (role === 'device') {
    const keys = (config.keys ?? {}) as Record<string, unknown>;
    keyPairFromPem('ed25519', file('keys.signing', keys.signing, true));
    keyPairFromPem('x25519', file('keys.sealing', keys.sealing, true));
    publicKeyFromRaw('x25519', file('keys.cloudSealingPublic', keys.cloudSealingPublic).toString('utf8').trim());
    publicKeyFromRaw('ed25519', file('keys.adminSigningPublic', keys.adminSigningPublic).toString('utf8').trim());
    if (Buffer.from(file('keys.cardPepper', keys.cardPepper, true).toString('utf8').trim(), 'base64').length !== 32) {
      throw new ProvisionError('the card pepper must be 32 bytes in base64');
    }
    const hw = HardwareConfig.safeParse(config.hardware);
    if (!hw.success) throw new ProvisionError(`hardware section: ${hw.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
    if (typeof mqtt.url !== 'string' || !/^mqtts:\/\//.test(mqtt.url)) throw new ProvisionError('mqtt.url must be an mqtts:// address');
  } else if (role === 'gateway') {
    const cloud = config.cloud as Record<string, unknown> | null | undefined;
    if (cloud) file('cloud.tokenFile', cloud.tokenFile, true);
  }
  return { role, tenant, id, serial: identity.serial, notAfter: new Date(cert.validTo).toISOString() };
}
