import { publicKeyFromRaw } from '../protocol/index.js';
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
    if (!r.changes) throw new RegistryError(409, `gateway ${gateway} is already registered`);
    this.audit.record(now, { tenant, actor, action: 'gateway.registered', objectKind: 'gateway', objectId: gateway });
    return { gateway, token };
  }

  addDevice(
    tenant: string,
    d: { device: string; gateway: string; signingPublicKey: string; sealingPublicKey: string; certSerial: string },
    actor: string,
  ): void {
    if (!this.db.prepare('SELECT 1 FROM gateways WHERE tenant = ? AND gateway = ?').get(tenant, d.gateway)) {
      throw new RegistryError(404, `gateway ${d.gateway} is not registered in this tenant`);
    }
    try {
      publicKeyFromRaw('ed25519', d.signingPublicKey);
      publicKeyFromRaw('x25519', d.sealingPublicKey);
    } catch (err) {
      throw new RegistryError(400, (err as Error).message);
    }
    const now = this.clock.now();
    const r = this.db
      .prepare(
        `INSERT OR IGNORE INTO devices (tenant, device, gateway, signing_public, sealing_public, cert_serial, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(tenant, d.device, d.gateway, d.signingPublicKey, d.sealingPublicKey, d.certSerial.toLowerCase(), now);
    if (!r.changes) throw new RegistryError(409, `device ${d.device} is already registered`);
    this.audit.record(now, { tenant, actor, action: 'device.registered', objectKind: 'device', objectId: d.device });
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
      for (const s of serials) ins.run(tenant, s.toLowerCase(), version);
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
