import { createHash, randomBytes } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import type { Db } from './db.js';

/**
 * Secrets the cloud hands out: admin API keys (per tenant, with a role) and gateway tokens.
 * Both are 32 random bytes, shown once, and stored only as SHA-256 hashes (high-entropy
 * secrets need no slow hash; a lookup by hash keeps comparison constant-time in effect).
 */
export const ROLES = ['owner', 'admin', 'reviewer', 'auditor'] as const;
export type Role = (typeof ROLES)[number];

/** What each role may do. Owners manage keys, retention and the contract; admins run the site. */
export const PERMISSIONS = {
  'keys:manage': ['owner'],
  'tenant:settings': ['owner'],
  'tenant:end-contract': ['owner'],
  'registry:write': ['owner', 'admin'],
  'subjects:write': ['owner', 'admin'],
  'subjects:read': ['owner', 'admin'],
  'subjects:export': ['owner', 'admin'],
  'subjects:erase': ['owner', 'admin'],
  'punches:read': ['owner', 'admin', 'reviewer', 'auditor'],
  'timesheets:read': ['owner', 'admin', 'reviewer', 'auditor'],
  'punches:review': ['owner', 'admin', 'reviewer'],
  'photos:read': ['owner', 'admin', 'reviewer'],
  'commands:read': ['owner', 'admin', 'auditor'],
  'audit:read': ['owner', 'admin', 'auditor'],
  'alarms:read': ['owner', 'admin', 'auditor'],
  'alarms:acknowledge': ['owner', 'admin'],
} as const satisfies Record<string, readonly Role[]>;
export type Permission = keyof typeof PERMISSIONS;

export function allowed(role: Role, permission: Permission): boolean {
  return (PERMISSIONS[permission] as readonly Role[]).includes(role);
}

export const hashSecret = (secret: string) => createHash('sha256').update(secret, 'utf8').digest('hex');

function newSecret(prefix: string): string {
  return `${prefix}_${randomBytes(32).toString('base64url')}`;
}

export interface ApiKeyIdentity {
  keyId: string;
  tenant: string;
  role: Role;
}

/** How a route learns who calls it (cloud/server.ts builds it): a gateway by token or certificate, an admin by API key with a permission. */
export interface Auth {
  gateway(req: FastifyRequest): { tenant: string; gateway: string };
  admin(req: FastifyRequest, tenant: string, permission: Permission): ApiKeyIdentity;
}

export function createApiKey(db: Db, tenant: string, role: Role, now: number): { keyId: string; key: string } {
  const key = newSecret('cfk');
  const keyId = `k-${randomBytes(6).toString('hex')}`;
  db.prepare('INSERT INTO api_keys (id, tenant, role, hash, created_at) VALUES (?, ?, ?, ?, ?)').run(keyId, tenant, role, hashSecret(key), now);
  return { keyId, key };
}

/**
 * Revokes one of the tenant's keys at once (findApiKey ignores revoked keys). Refuses to revoke
 * the tenant's last active owner key, which would leave nobody able to manage keys.
 */
export function revokeApiKey(db: Db, tenant: string, keyId: string, now: number): 'revoked' | 'unknown' | 'last-owner' {
  return db.transaction(() => {
    const row = db.prepare('SELECT role FROM api_keys WHERE tenant = ? AND id = ? AND revoked_at IS NULL').get(tenant, keyId) as { role: Role } | undefined;
    if (!row) return 'unknown';
    if (row.role === 'owner') {
      const owners = db.prepare("SELECT COUNT(*) FROM api_keys WHERE tenant = ? AND role = 'owner' AND revoked_at IS NULL").pluck().get(tenant) as number;
      if (owners <= 1) return 'last-owner';
    }
    db.prepare('UPDATE api_keys SET revoked_at = ? WHERE tenant = ? AND id = ?').run(now, tenant, keyId);
    return 'revoked';
  }).immediate();
}

export function findApiKey(db: Db, key: string): ApiKeyIdentity | undefined {
  const row = db.prepare('SELECT id, tenant, role FROM api_keys WHERE hash = ? AND revoked_at IS NULL').get(hashSecret(key)) as
    | { id: string; tenant: string; role: Role }
    | undefined;
  return row && { keyId: row.id, tenant: row.tenant, role: row.role };
}

export function createGatewayToken(): { token: string; hash: string } {
  const token = newSecret('cfg');
  return { token, hash: hashSecret(token) };
}

export function findGateway(db: Db, token: string): { tenant: string; gateway: string } | undefined {
  return db.prepare('SELECT tenant, gateway FROM gateways WHERE token_hash = ? AND revoked_at IS NULL').get(hashSecret(token)) as
    | { tenant: string; gateway: string }
    | undefined;
}
