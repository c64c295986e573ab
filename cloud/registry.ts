import { publicKeyFromRaw } from '../protocol/index.js';
import { normalizeSerial } from '../protocol/cert-identity.js';
import type { AuditLog } from './audit.js';
import { createGatewayToken } from './auth.js';
import type { Clock } from './clock.js';
import type { Db } from './db.js';
import type { Outbox } from './outbox.js';

/** Gateways, devices and certificate revocations of each tenant (what provisioning registers). */
export class RegistryError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

export interface DeviceKeys {
  device: string;
  gateway: string;
  signingPublicKey: string;
  sealingPublicKey: string;
  certSerial: string;
}

export class Registry {
  constructor(
    private readonly db: Db,
    private readonly outbox: Outbox,
    private readonly audit: AuditLog,
    private readonly clock: Clock,
  ) {}

  addGateway(tenant: string, gateway: string, actor: string): { gateway: string; token: string } {
    const { token, hash } = createGatewayToken();
    const now = this.clock.now();
    const r = this.db.prepare('INSERT OR IGNORE INTO gateways (tenant, gateway, token_hash, created_at) VALUES (?, ?, ?, ?)').run(tenant, gateway, hash, now);
    if (!r.changes) throw new RegistryError(409, `gateway ${gateway} is already registered (a new token: POST .../gateways/${gateway}/token)`);
    this.audit.record(now, { tenant, actor, action: 'gateway.registered', objectKind: 'gateway', objectId: gateway });
    return { gateway, token };
  }

  /**
   * A new token for a registered gateway (a replaced or rebuilt gateway, a leaked token). The
   * old token is refused at once: a gateway keeps its queue on disk while it waits for the
   * new bundle, so nothing is lost, and a leaked token must not keep working for a window.
   * A revoked gateway becomes usable again with its new token.
   */
  rotateGatewayToken(tenant: string, gateway: string, actor: string): { gateway: string; token: string } {
    const { token, hash } = createGatewayToken();
    const now = this.clock.now();
    const r = this.db.prepare('UPDATE gateways SET token_hash = ?, revoked_at = NULL WHERE tenant = ? AND gateway = ?').run(hash, tenant, gateway);
    if (!r.changes) throw new RegistryError(404, `gateway ${gateway} is not registered in this tenant`);
    this.audit.record(now, { tenant, actor, action: 'gateway.token-rotated', objectKind: 'gateway', objectId: gateway });
    return { gateway, token };
  }

  /** Refuses the gateway's token from now on (a stolen or retired gateway). Idempotent. */
  revokeGateway(tenant: string, gateway: string, actor: string): { gateway: string; revokedAt: number } {
    const now = this.clock.now();
    const row = this.db.prepare('SELECT revoked_at AS revokedAt FROM gateways WHERE tenant = ? AND gateway = ?').get(tenant, gateway) as { revokedAt: number | null } | undefined;
    if (!row) throw new RegistryError(404, `gateway ${gateway} is not registered in this tenant`);
    if (row.revokedAt !== null) return { gateway, revokedAt: row.revokedAt };
    this.db.prepare('UPDATE gateways SET revoked_at = ? WHERE tenant = ? AND gateway = ?').run(now, tenant, gateway);
    this.audit.record(now, { tenant, actor, action: 'gateway.revoked', objectKind: 'gateway', objectId: gateway });
    return { gateway, revokedAt: now };
  }

  addDevice(tenant: string, d: DeviceKeys, actor: string): void {
    this.checkDeviceKeys(tenant, d);
    const now = this.clock.now();
    const r = this.db
      .prepare(
        `INSERT OR IGNORE INTO devices (tenant, device, gateway, signing_public, sealing_public, cert_serial, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(tenant, d.device, d.gateway, d.signingPublicKey, d.sealingPublicKey, normalizeSerial(d.certSerial), now);
    if (!r.changes) throw new RegistryError(409, `device ${d.device} is already registered (replace its keys: PUT .../devices/${d.device})`);
    this.audit.record(now, { tenant, actor, action: 'device.registered', objectKind: 'device', objectId: d.device });
  }

  /**
   * Replaces a registered terminal's public keys, gateway and certificate serial (a rotated
   * certificate, a unit replaced with `device add --force`). The old certificate serial is
   * not revoked here: provisioning owns the CRL and its overlap window, and publishes the
   * old serial with `revoke --due` (POST .../revocations) when the overlap ends.
   * Events still queued under old signing keys are refused by ingest once the keys change,
   * which is why rotation sends the unchanged keys with the new serial.
   */
  replaceDevice(tenant: string, d: DeviceKeys, actor: string): { replaced: { certSerial: string; keysChanged: boolean } } {
    this.checkDeviceKeys(tenant, d);
    const now = this.clock.now();
    const before = this.db
      .prepare('SELECT cert_serial AS certSerial, signing_public AS signing, sealing_public AS sealing FROM devices WHERE tenant = ? AND device = ?')
      .get(tenant, d.device) as { certSerial: string; signing: string; sealing: string } | undefined;
    if (!before) throw new RegistryError(404, `device ${d.device} is not registered in this tenant`);
    this.db
      .prepare('UPDATE devices SET gateway = ?, signing_public = ?, sealing_public = ?, cert_serial = ? WHERE tenant = ? AND device = ?')
      .run(d.gateway, d.signingPublicKey, d.sealingPublicKey, normalizeSerial(d.certSerial), tenant, d.device);
    const keysChanged = before.signing !== d.signingPublicKey || before.sealing !== d.sealingPublicKey;
    this.audit.record(now, {
      tenant,
      actor,
      action: 'device.replaced',
      objectKind: 'device',
      objectId: d.device,
      detail: { previousSerial: before.certSerial, certSerial: normalizeSerial(d.certSerial), keysChanged },
    });
    return { replaced: { certSerial: before.certSerial, keysChanged } };
  }

  private checkDeviceKeys(tenant: string, d: DeviceKeys): void {
    if (!this.db.prepare('SELECT 1 FROM gateways WHERE tenant = ? AND gateway = ? AND revoked_at IS NULL').get(tenant, d.gateway)) {
      throw new RegistryError(404, `gateway ${d.gateway} is not registered in this tenant (or is revoked)`);
    }
    try {
      publicKeyFromRaw('ed25519', d.signingPublicKey);
      publicKeyFromRaw('x25519', d.sealingPublicKey);
    } catch (err) {
      throw new RegistryError(400, (err as Error).message);
    }
  }

  listDevices(tenant: string) {
    return this.db
      .prepare(
        `SELECT device, gateway, cert_serial AS certSerial, presence, presence_at AS presenceAt, created_at AS createdAt
         FROM devices WHERE tenant = ? ORDER BY device`,
      )
      .all(tenant);
  }

  revoke(tenant: string, serials: string[], actor: string): number {
    const now = this.clock.now();
    let version = 0;
    this.db.transaction(() => {
      version = ((this.db.prepare('SELECT MAX(version) FROM revocations WHERE tenant = ?').pluck().get(tenant) as number | null) ?? 0) + 1;
      const ins = this.db.prepare('INSERT OR IGNORE INTO revocations (tenant, serial, version) VALUES (?, ?, ?)');
      for (const s of serials) ins.run(tenant, normalizeSerial(s), version);
      this.audit.record(now, { tenant, actor, action: 'certificates.revoked', objectKind: 'revocation-list', objectId: String(version), detail: { count: serials.length } });
    })();
    const all = this.revocations(tenant);
    this.outbox.enqueueAll(tenant, { type: 'revocation-list', serials: all.serials, listVersion: all.version });
    return version;
  }

  revocations(tenant: string): { version: number; serials: string[] } {
    const serials = this.db.prepare('SELECT serial FROM revocations WHERE tenant = ? ORDER BY serial').pluck().all(tenant) as string[];
    const version = (this.db.prepare('SELECT MAX(version) FROM revocations WHERE tenant = ?').pluck().get(tenant) as number | null) ?? 0;
    return { version, serials };
  }

  presence(tenant: string, gateway: string, items: Array<{ device: string; state: string; at: number }>): number {
    const stmt = this.db.prepare(
      'UPDATE devices SET presence = ?, presence_at = ? WHERE tenant = ? AND device = ? AND gateway = ? AND (presence_at IS NULL OR presence_at <= ?)',
    );
    let n = 0;
    this.db.transaction(() => items.forEach((i) => (n += stmt.run(i.state, i.at, tenant, i.device, gateway, i.at).changes)))();
    return n;
  }
}
