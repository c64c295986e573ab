import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiKey, PERMISSIONS, ROLES, type Permission, type Role } from './auth.js';
import { startHarness, type Harness } from './testing/harness.js';

/**
 * Every admin route × every caller: the four roles, another tenant's owner key, no key and a
 * revoked key. Allowed means the request got past authorisation (whatever the handler then
 * answered: 200, 201, 404, 409); refused means 403 (role, other tenant) or 401 (no key,
 * revoked key), as PERMISSIONS in cloud/auth.ts says. The route list comes from the server's
 * OpenAPI document, so a new admin route without a row here fails this test.
 *
 * Requests are valid for the route's schema (validation runs before authorisation, so an
 * invalid one would prove nothing) and aim at objects that do not exist where the route would
 * otherwise change something lasting.
 */
interface Row {
  permission: Permission;
  params?: Record<string, string>;
  query?: string;
  body?: unknown;
}

const B64KEY = `${'A'.repeat(43)}=`;
const ROUTES: Record<string, Row> = {
  'POST /v1/tenants/{tenant}/api-keys': { permission: 'keys:manage', body: { role: 'auditor' } },
  'DELETE /v1/tenants/{tenant}/api-keys/{keyId}': { permission: 'keys:manage', params: { keyId: 'k-000000000000' } },
  'POST /v1/tenants/{tenant}/gateways': { permission: 'registry:write', body: { gateway: 'gw-roles' } },
  'POST /v1/tenants/{tenant}/devices': {
    permission: 'registry:write',
    body: { device: 'door-roles', gateway: 'gw-none', signingPublicKey: B64KEY, sealingPublicKey: B64KEY, certSerial: 'ab' },
  },
  'GET /v1/tenants/{tenant}/devices': { permission: 'commands:read' },
  'PUT /v1/tenants/{tenant}/devices/{device}': {
    permission: 'registry:write',
    params: { device: 'door-none' },
    body: { gateway: 'gw-none', signingPublicKey: B64KEY, sealingPublicKey: B64KEY, certSerial: 'ab' },
  },
  'POST /v1/tenants/{tenant}/gateways/{gateway}/token': { permission: 'registry:write', params: { gateway: 'gw-none' } },
  'POST /v1/tenants/{tenant}/gateways/{gateway}/revoke': { permission: 'registry:write', params: { gateway: 'gw-none' } },
  'POST /v1/tenants/{tenant}/revocations': { permission: 'registry:write', body: { serials: ['fe'] } },
  'GET /v1/tenants/{tenant}/settings': { permission: 'audit:read' },
  'PUT /v1/tenants/{tenant}/settings': { permission: 'tenant:settings', body: {} },
  'POST /v1/tenants/{tenant}/contract-end': { permission: 'tenant:end-contract' },
  'GET /v1/tenants/{tenant}/punches': { permission: 'punches:read' },
  'POST /v1/tenants/{tenant}/punches/{eventId}/review': {
    permission: 'punches:review',
    params: { eventId: '00000000-0000-4000-8000-000000000000' },
    body: { outcome: 'cleared' },
  },
  'GET /v1/tenants/{tenant}/photos/{photoId}': { permission: 'photos:read', params: { photoId: '0'.repeat(32) } },
  'GET /v1/tenants/{tenant}/commands': { permission: 'commands:read' },
  'GET /v1/tenants/{tenant}/audit': { permission: 'audit:read' },
  'GET /v1/tenants/{tenant}/alarms': { permission: 'alarms:read' },
  'GET /v1/tenants/{tenant}/access-groups': { permission: 'subjects:read' },
  'POST /v1/tenants/{tenant}/access-groups': { permission: 'subjects:write', body: { name: 'roles check' } },
  'PUT /v1/tenants/{tenant}/devices/{device}/policy': { permission: 'registry:write', params: { device: 'door-none' }, body: { policy: {} } },
  'POST /v1/tenants/{tenant}/alarms/{alarmId}/acknowledge': { permission: 'alarms:acknowledge', params: { alarmId: '999999' } },
  'GET /v1/tenants/{tenant}/timesheets': { permission: 'timesheets:read', query: 'from=2026-01-01&to=2026-01-02' },
  'POST /v1/tenants/{tenant}/subjects': { permission: 'subjects:write', body: {} },
  'GET /v1/tenants/{tenant}/subjects/{subject}': { permission: 'subjects:read', params: { subject: 'nobody' } },
  'PUT /v1/tenants/{tenant}/subjects/{subject}/reference': { permission: 'subjects:write', params: { subject: 'nobody' }, body: { referencePhotos: ['/9j/'] } },
  'POST /v1/tenants/{tenant}/subjects/{subject}/consent': { permission: 'subjects:write', params: { subject: 'nobody' }, body: { state: 'granted', policyVersion: 'v1' } },
  'POST /v1/tenants/{tenant}/subjects/{subject}/leave': { permission: 'subjects:write', params: { subject: 'nobody' } },
  'GET /v1/tenants/{tenant}/subjects/{subject}/export': { permission: 'subjects:export', params: { subject: 'nobody' } },
  'DELETE /v1/tenants/{tenant}/subjects/{subject}': { permission: 'subjects:erase', params: { subject: 'nobody' } },
};

type Caller = Role | 'other-tenant' | 'no-key' | 'revoked';
const CALLERS: Caller[] = ['other-tenant', 'no-key', 'revoked', 'auditor', 'reviewer', 'admin', 'owner'];

let h: Harness;
const tokens = new Map<Caller, string | undefined>();
beforeAll(async () => {
  h = await startHarness(['acme', 'globex']);
  for (const role of ROLES) tokens.set(role, createApiKey(h.service.db, 'acme', role, h.clock.now()).key);
  tokens.set('other-tenant', h.tenants.get('globex')!.ownerKey);
  tokens.set('no-key', undefined);
  const revoked = createApiKey(h.service.db, 'acme', 'owner', h.clock.now());
  const r = await h.api('DELETE', `/v1/tenants/acme/api-keys/${revoked.keyId}`, { token: tokens.get('owner') });
  expect(r.status).toBe(200);
  tokens.set('revoked', revoked.key);
});
afterAll(async () => h?.close());

function expected(caller: Caller, permission: Permission): 'allowed' | 401 | 403 {
  if (caller === 'no-key' || caller === 'revoked') return 401;
  if (caller === 'other-tenant') return 403;
  return (PERMISSIONS[permission] as readonly Role[]).includes(caller) ? 'allowed' : 403;
}

describe('roles × admin routes', () => {
  it('has a row for every admin route the server publishes, and no row for a route that does not exist', async () => {
    const doc = (await h.api('GET', '/openapi.json')).json as { paths: Record<string, Record<string, unknown>> };
    const published = Object.entries(doc.paths)
      .filter(([path]) => path.startsWith('/v1/tenants/'))
      .flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`))
      .sort();
    expect(published).toEqual(Object.keys(ROUTES).sort());
  });

  // Contract end changes the tenant for good: it runs last.
  const order = Object.keys(ROUTES).sort((a, b) => Number(a.includes('contract-end')) - Number(b.includes('contract-end')));
  it.each(order)('%s answers each caller per PERMISSIONS', async (route) => {
    const row = ROUTES[route]!;
    const [method, template] = route.split(' ') as [string, string];
    const path = template.replace(/\{(\w+)\}/g, (_, name: string) => (name === 'tenant' ? 'acme' : row.params![name]!));
    const url = row.query ? `${path}?${row.query}` : path;
    const seen: Record<string, number> = {};
    for (const caller of CALLERS) {
      const r = await h.api(method, url, { token: tokens.get(caller), body: row.body });
      seen[caller] = r.status;
      const want = expected(caller, row.permission);
      if (want === 'allowed') {
        // Past authorisation, and not stopped by validation first (which would make the row prove nothing).
        expect([400, 401, 403], `${caller}: ${JSON.stringify(r.json)}`).not.toContain(r.status);
      } else {
        expect(r.status, `${caller}: ${JSON.stringify(r.json)}`).toBe(want);
      }
    }
    // Each row exercises both sides: at least one role gets through and the anonymous caller does not.
    expect(Object.values(seen).some((s) => ![401, 403].includes(s))).toBe(true);
  });
});
