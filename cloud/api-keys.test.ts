import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from './testing/harness.js';

/** Admin API keys: an owner revokes a key, which stops working on the next request; audited. */
let h: Harness;
let owner: string;
beforeAll(async () => {
  h = await startHarness(['acme', 'globex']);
  owner = h.tenants.get('acme')!.ownerKey;
});
afterAll(async () => h?.close());

const createKey = async (role: string, token = owner) => (await h.api('POST', '/v1/tenants/acme/api-keys', { token, body: { role } })).json as { keyId: string; key: string };

describe('API key revocation', () => {
  it('revokes a key at once (401 on its next request) and audits it', async () => {
    const admin = await createKey('admin');
    expect((await h.api('GET', '/v1/tenants/acme/punches', { token: admin.key })).status).toBe(200);
    const r = await h.api('DELETE', `/v1/tenants/acme/api-keys/${admin.keyId}`, { token: owner });
    expect(r.status).toBe(200);
    expect(r.json).toEqual({ keyId: admin.keyId, revokedAt: h.clock.now() });
    const after = await h.api('GET', '/v1/tenants/acme/punches', { token: admin.key });
    expect(after.status).toBe(401);
    expect(h.service.db.prepare('SELECT revoked_at FROM api_keys WHERE id = ?').pluck().get(admin.keyId)).toBe(h.clock.now());
    const audit = (await h.api('GET', '/v1/tenants/acme/audit?limit=5000', { token: owner })).json.entries as Array<{ action: string; objectId: string; actor: string }>;
    expect(audit.filter((a) => a.action === 'api-key.revoked')).toEqual([expect.objectContaining({ objectId: admin.keyId, actor: expect.stringMatching(/^k-/) })]);
    // Revoking it again: it is no longer an active key.
    expect((await h.api('DELETE', `/v1/tenants/acme/api-keys/${admin.keyId}`, { token: owner })).status).toBe(404);
  });

  it('is for owners only, stays inside the tenant, and keeps the last owner key', async () => {
    const admin = await createKey('admin');
    const victim = await createKey('auditor');
    expect((await h.api('DELETE', `/v1/tenants/acme/api-keys/${victim.keyId}`, { token: admin.key })).status).toBe(403);
    // Another tenant's owner can neither revoke nor learn whether the key exists.
    const globex = h.tenants.get('globex')!.ownerKey;
    expect((await h.api('DELETE', `/v1/tenants/acme/api-keys/${victim.keyId}`, { token: globex })).status).toBe(403);
    expect((await h.api('DELETE', `/v1/tenants/globex/api-keys/${victim.keyId}`, { token: globex })).status).toBe(404);
    expect((await h.api('GET', '/v1/tenants/acme/punches', { token: victim.key })).status).toBe(200);
    const ownerId = h.service.db.prepare("SELECT id FROM api_keys WHERE tenant = 'acme' AND role = 'owner'").pluck().get() as string;
    const last = await h.api('DELETE', `/v1/tenants/acme/api-keys/${ownerId}`, { token: owner });
    expect(last.status).toBe(409);
    expect(last.json.error).toMatch(/last owner key/);
    // With a second owner the first may go, and then it is refused at once.
    const second = await createKey('owner');
    expect((await h.api('DELETE', `/v1/tenants/acme/api-keys/${ownerId}`, { token: second.key })).status).toBe(200);
    expect((await h.api('GET', '/v1/tenants/acme/audit', { token: owner })).status).toBe(401);
    owner = second.key;
    expect((await h.api('DELETE', '/v1/tenants/acme/api-keys/not-a-key', { token: owner })).status).toBe(400);
  });
});
