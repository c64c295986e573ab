import type { FastifyInstance } from 'fastify';
import { GROUP_NAME_MAX } from './access-groups.js';
import type { AlarmState } from './alarms.js';
import { createApiKey, revokeApiKey, ROLES, type Auth, type Role } from './auth.js';
import { HttpError } from './http-errors.js';
import type { DeviceKeys } from './registry.js';
import type { CloudService } from './service.js';
import { listPunches } from './punches.js';
import { B64, ID, List, TenantParams, UUID } from './route-schemas.js';
import { getSettings, SettingsError, updateSettings, MAX_RETENTION_DAYS } from './settings.js';

/** Tenant administration: keys, registry, settings, punches and reviews, commands, audit. */
const DeviceParams = { type: 'object', required: ['tenant', 'device'], properties: { tenant: ID, device: ID } } as const;
const GatewayParams = { type: 'object', required: ['tenant', 'gateway'], properties: { tenant: ID, gateway: ID } } as const;
const GroupOut = { type: 'object', properties: { id: { type: 'string' }, name: { type: 'string' }, createdAt: { type: 'integer' } } } as const;
const DeviceBody = {
  type: 'object',
  required: ['device', 'gateway', 'signingPublicKey', 'sealingPublicKey', 'certSerial'],
  additionalProperties: false,
  properties: { device: ID, gateway: ID, signingPublicKey: B64(44), sealingPublicKey: B64(44), certSerial: { type: 'string', pattern: '^[0-9a-fA-F]{1,64}$' } },
} as const;

export function registerAdminRoutes(app: FastifyInstance, service: CloudService, auth: Auth): void {
  const tenantOf = (req: { params: unknown }) => {
    const t = (req.params as { tenant: string }).tenant;
    return t;
  };

  app.post(
    '/v1/tenants/:tenant/api-keys',
    {
      schema: {
        summary: 'Create an API key (shown once)',
        tags: ['admin'],
        params: TenantParams,
        body: { type: 'object', required: ['role'], additionalProperties: false, properties: { role: { type: 'string', enum: [...ROLES] } } },
        response: { 201: { type: 'object', properties: { keyId: { type: 'string' }, key: { type: 'string' }, role: { type: 'string' } } } },
      },
    },
    async (req, reply) => {
      const tenant = tenantOf(req);
      const who = auth.admin(req, tenant, 'keys:manage');
      const { role } = req.body as { role: Role };
      const created = createApiKey(service.db, tenant, role, service.clock.now());
      service.audit.record(service.clock.now(), { tenant, actor: who.keyId, action: 'api-key.created', objectKind: 'api-key', objectId: created.keyId, detail: { role } });
      return reply.code(201).send({ ...created, role });
    },
  );

  app.delete(
    '/v1/tenants/:tenant/api-keys/:keyId',
    {
      schema: {
        summary: 'Revoke an API key at once (not the last owner key)',
        tags: ['admin'],
        params: { type: 'object', required: ['tenant', 'keyId'], properties: { tenant: ID, keyId: { type: 'string', pattern: '^k-[0-9a-f]{12}$' } } },
        response: { 200: { type: 'object', properties: { keyId: { type: 'string' }, revokedAt: { type: 'integer' } } } },
      },
    },
    async (req) => {
      const tenant = tenantOf(req);
      const who = auth.admin(req, tenant, 'keys:manage');
      const { keyId } = req.params as { keyId: string };
      const at = service.clock.now();
      const outcome = revokeApiKey(service.db, tenant, keyId, at);
      if (outcome === 'unknown') throw new HttpError(404, 'no such active API key in this tenant');
      if (outcome === 'last-owner') throw new HttpError(409, 'this is the tenant’s last owner key; create another owner key first');
      service.audit.record(at, { tenant, actor: who.keyId, action: 'api-key.revoked', objectKind: 'api-key', objectId: keyId });
      return { keyId, revokedAt: at };
    },
  );

  app.post(
    '/v1/tenants/:tenant/gateways',
    {
      schema: {
        summary: 'Register a gateway; returns its token once',
        tags: ['registry'],
        params: TenantParams,
        body: { type: 'object', required: ['gateway'], additionalProperties: false, properties: { gateway: ID } },
        response: { 201: { type: 'object', properties: { gateway: { type: 'string' }, token: { type: 'string' } } } },
      },
    },
    async (req, reply) => {
      const tenant = tenantOf(req);
      const who = auth.admin(req, tenant, 'registry:write');
      return reply.code(201).send(service.registry.addGateway(tenant, (req.body as { gateway: string }).gateway, who.keyId));
    },
  );

  app.post(
    '/v1/tenants/:tenant/devices',
    {
      schema: {
        summary: 'Register a terminal with its public keys and certificate serial',
        tags: ['registry'],
        params: TenantParams,
        body: DeviceBody,
        response: { 201: { type: 'object', properties: { device: { type: 'string' } } } },
      },
    },
    async (req, reply) => {
      const tenant = tenantOf(req);
      const who = auth.admin(req, tenant, 'registry:write');
      const body = req.body as { device: string; gateway: string; signingPublicKey: string; sealingPublicKey: string; certSerial: string };
      service.registry.addDevice(tenant, body, who.keyId);
      return reply.code(201).send({ device: body.device });
    },
  );

  app.put(
    '/v1/tenants/:tenant/devices/:device',
    {
      schema: {
        summary: "Replace a registered terminal's public keys, gateway and certificate serial (rotation, a replaced unit)",
        tags: ['registry'],
        params: DeviceParams,
        body: { ...DeviceBody, required: DeviceBody.required.filter((k) => k !== 'device'), properties: { ...DeviceBody.properties, device: ID } },
        response: { 200: { type: 'object', properties: { device: { type: 'string' }, previousSerial: { type: 'string' }, keysChanged: { type: 'boolean' } } } },
      },
    },
    async (req) => {
      const tenant = tenantOf(req);
      const who = auth.admin(req, tenant, 'registry:write');
      const { device } = req.params as { device: string };
      const body = req.body as Omit<DeviceKeys, 'device'> & { device?: string };
      if (body.device !== undefined && body.device !== device) throw new HttpError(400, 'the body names another device than the path');
      const { replaced } = service.registry.replaceDevice(tenant, { ...body, device }, who.keyId);
      return { device, previousSerial: replaced.certSerial, keysChanged: replaced.keysChanged };
    },
  );

  app.post(
    '/v1/tenants/:tenant/gateways/:gateway/token',
    {
      schema: {
        summary: 'A new token for a gateway, shown once; the old token is refused at once',
        tags: ['registry'],
        params: GatewayParams,
        response: { 201: { type: 'object', properties: { gateway: { type: 'string' }, token: { type: 'string' } } } },
      },
    },
    async (req, reply) => {
      const tenant = tenantOf(req);
      const who = auth.admin(req, tenant, 'registry:write');
      return reply.code(201).send(service.registry.rotateGatewayToken(tenant, (req.params as { gateway: string }).gateway, who.keyId));
    },
  );

  app.post(
    '/v1/tenants/:tenant/gateways/:gateway/revoke',
    {
      schema: {
        summary: "Refuse a gateway's token from now on (a new token lifts it)",
        tags: ['registry'],
        params: GatewayParams,
        response: { 200: { type: 'object', properties: { gateway: { type: 'string' }, revokedAt: { type: 'integer' } } } },
      },
    },
    async (req) => {
      const tenant = tenantOf(req);
      const who = auth.admin(req, tenant, 'registry:write');
      return service.registry.revokeGateway(tenant, (req.params as { gateway: string }).gateway, who.keyId);
    },
  );

  app.get(
    '/v1/tenants/:tenant/devices',
    { schema: { summary: 'List terminals with presence', tags: ['registry'], params: TenantParams, response: { 200: { type: 'object', properties: { devices: List } } } } },
    async (req) => {
      const tenant = tenantOf(req);
      auth.admin(req, tenant, 'commands:read');
      return { devices: service.registry.listDevices(tenant) };
    },
  );

  app.get(
    '/v1/tenants/:tenant/access-groups',
    {
      schema: {
        summary: 'The access group directory: opaque ids (what terminals hold) and their names (which stay in the cloud)',
        tags: ['access'],
        params: TenantParams,
        response: { 200: { type: 'object', properties: { groups: List } } },
      },
    },
    async (req) => {
      const tenant = tenantOf(req);
      auth.admin(req, tenant, 'subjects:read');
      return { groups: service.accessGroups.list(tenant) };
    },
  );

  app.post(
    '/v1/tenants/:tenant/access-groups',
    {
      schema: {
        summary: 'Add an access group by name (or find it); returns its opaque id',
        tags: ['access'],
        params: TenantParams,
        body: { type: 'object', required: ['name'], additionalProperties: false, properties: { name: { type: 'string', minLength: 1, maxLength: GROUP_NAME_MAX } } },
        response: { 200: GroupOut, 201: GroupOut },
      },
    },
    async (req, reply) => {
      const tenant = tenantOf(req);
      const who = auth.admin(req, tenant, 'subjects:write');
      const g = service.accessGroups.ensure(tenant, (req.body as { name: string }).name, who.keyId, service.clock.now());
      return reply.code(g.created ? 201 : 200).send(g);
    },
  );

  app.put(
    '/v1/tenants/:tenant/devices/:device/policy',
    {
      schema: {
        summary: "Send a terminal its policy (a config-update command); access groups may be named, the terminal receives their ids",
        tags: ['access'],
        params: DeviceParams,
        body: { type: 'object', required: ['policy'], additionalProperties: false, properties: { policy: { type: 'object', additionalProperties: true } } },
        response: { 200: { type: 'object', properties: { device: { type: 'string' }, commandId: { type: 'string' } } } },
      },
    },
    async (req) => {
      const tenant = tenantOf(req);
      const who = auth.admin(req, tenant, 'registry:write');
      const { device } = req.params as { device: string };
      if (!service.registry.listDevices(tenant).some((d) => (d as { device: string }).device === device)) throw new HttpError(404, 'no such device');
      const at = service.clock.now();
      const policy = service.accessGroups.policyForTerminals(tenant, (req.body as { policy: Record<string, unknown> }).policy, who.keyId, at);
      const [commandId] = service.outbox.enqueue(tenant, [device], { type: 'config-update', config: { policy } });
      service.audit.record(at, { tenant, actor: who.keyId, action: 'device.policy-sent', objectKind: 'device', objectId: device, detail: { commandId: commandId! } });
      return { device, commandId };
    },
  );

  app.post(
    '/v1/tenants/:tenant/revocations',
    {
      schema: {
        summary: 'Revoke certificates by serial; gateways and devices are told',
        tags: ['registry'],
        params: TenantParams,
        body: { type: 'object', required: ['serials'], additionalProperties: false, properties: { serials: { type: 'array', minItems: 1, maxItems: 10_000, items: { type: 'string', pattern: '^[0-9a-fA-F]{1,64}$' } } } },
        response: { 200: { type: 'object', properties: { version: { type: 'integer' } } } },
      },
    },
    async (req) => {
      const tenant = tenantOf(req);
      const who = auth.admin(req, tenant, 'registry:write');
      return { version: service.registry.revoke(tenant, (req.body as { serials: string[] }).serials, who.keyId) };
    },
  );

  const SettingsSchema = {
    type: 'object',
    additionalProperties: false,
    properties: {
      photoRetentionDays: { type: 'integer', minimum: 1, maximum: MAX_RETENTION_DAYS },
      punchRetentionDays: { type: 'integer', minimum: 1, maximum: MAX_RETENTION_DAYS },
      leaverPhotoDays: { type: 'integer', minimum: 0, maximum: MAX_RETENTION_DAYS },
      recheckFaceExists: { type: 'boolean' },
      recheckSimilarity: { type: 'boolean' },
      minFaceExists: { type: 'number', minimum: 0, maximum: 1 },
      minSimilarity: { type: 'number', minimum: 0, maximum: 1 },
      timeZone: { type: 'string', minLength: 1, maxLength: 64, description: 'IANA time zone for timesheet days (default UTC)' },
    },
  } as const;
  const SettingsOut = { type: 'object', properties: { ...SettingsSchema.properties, contractEndedAt: { type: ['integer', 'null'] } } } as const;

  app.get(
    '/v1/tenants/:tenant/settings',
    { schema: { summary: 'Retention and re-check policy', tags: ['tenant'], params: TenantParams, response: { 200: SettingsOut } } },
    async (req) => {
      const tenant = tenantOf(req);
      auth.admin(req, tenant, 'audit:read');
      return getSettings(service.db, tenant);
    },
  );

  app.put(
    '/v1/tenants/:tenant/settings',
    { schema: { summary: 'Change retention (1 day to 7 years) and re-check policy', tags: ['tenant'], params: TenantParams, body: SettingsSchema, response: { 200: SettingsOut } } },
    async (req) => {
      const tenant = tenantOf(req);
      const who = auth.admin(req, tenant, 'tenant:settings');
      try {
        const s = updateSettings(service.db, tenant, req.body as Record<string, never>);
        service.audit.record(service.clock.now(), {
          tenant,
          actor: who.keyId,
          action: 'settings.changed',
          objectKind: 'tenant',
          objectId: tenant,
          detail: { photoRetentionDays: s.photoRetentionDays, punchRetentionDays: s.punchRetentionDays, leaverPhotoDays: s.leaverPhotoDays, timeZone: s.timeZone },
        });
        return s;
      } catch (err) {
        if (err instanceof SettingsError) throw new HttpError(400, err.message);
        throw err;
      }
    },
  );

  app.post(
    '/v1/tenants/:tenant/contract-end',
    {
      schema: {
        summary: 'End the contract: the sweeper deletes all photos, reference photos and templates, and the vault key is destroyed',
        tags: ['tenant'],
        params: TenantParams,
        response: { 200: { type: 'object', properties: { contractEndedAt: { type: 'integer' } } } },
      },
    },
    async (req) => {
      const tenant = tenantOf(req);
      const who = auth.admin(req, tenant, 'tenant:end-contract');
      const at = service.clock.now();
      service.db.prepare('UPDATE tenants SET contract_ended_at = COALESCE(contract_ended_at, ?) WHERE id = ?').run(at, tenant);
      service.audit.record(at, { tenant, actor: who.keyId, action: 'contract.ended', objectKind: 'tenant', objectId: tenant });
      return { contractEndedAt: getSettings(service.db, tenant).contractEndedAt ?? at };
    },
  );

  app.get(
    '/v1/tenants/:tenant/punches',
    {
      schema: {
        summary: 'Punches (opaque subject ids, decisions, scores, re-check and review state)',
        tags: ['punches'],
        params: TenantParams,
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: { subject: ID, review: { type: 'string', enum: ['open', 'cleared', 'confirmed', 'none'] }, since: { type: 'integer', minimum: 0 }, limit: { type: 'integer', minimum: 1, maximum: 5000 } },
        },
        response: { 200: { type: 'object', properties: { punches: List } } },
      },
    },
    async (req) => {
      const tenant = tenantOf(req);
      auth.admin(req, tenant, 'punches:read');
      const q = req.query as { subject?: string; review?: string; since?: number; limit?: number };
      return { punches: listPunches(service, tenant, q) };
    },
  );

  app.post(
    '/v1/tenants/:tenant/punches/:eventId/review',
    {
      schema: {
        summary: 'Resolve a punch flagged for review',
        tags: ['punches'],
        params: { type: 'object', required: ['tenant', 'eventId'], properties: { tenant: ID, eventId: UUID } },
        body: { type: 'object', required: ['outcome'], additionalProperties: false, properties: { outcome: { type: 'string', enum: ['cleared', 'confirmed'] } } },
        response: { 200: { type: 'object', properties: { eventId: { type: 'string' }, reviewState: { type: 'string' } } } },
      },
    },
    async (req) => {
      const tenant = tenantOf(req);
      const who = auth.admin(req, tenant, 'punches:review');
      const { eventId } = req.params as { eventId: string };
      const { outcome } = req.body as { outcome: string };
      const r = service.db.prepare('UPDATE punches SET review_state = ? WHERE tenant = ? AND event_id = ?').run(outcome, tenant, eventId);
      if (!r.changes) throw new HttpError(404, 'no such punch');
      service.audit.record(service.clock.now(), { tenant, actor: who.keyId, action: 'punch.reviewed', objectKind: 'punch', objectId: eventId, detail: { outcome } });
      return { eventId, reviewState: outcome };
    },
  );

  app.get(
    '/v1/tenants/:tenant/photos/:photoId',
    {
      schema: {
        summary: 'A punch or reference photo (decrypted JPEG); every view is audited',
        tags: ['punches'],
        params: { type: 'object', required: ['tenant', 'photoId'], properties: { tenant: ID, photoId: { type: 'string', pattern: '^[0-9a-f]{32}$' } } },
      },
    },
    async (req, reply) => {
      const tenant = tenantOf(req);
      const who = auth.admin(req, tenant, 'photos:read');
      const { photoId } = req.params as { photoId: string };
      let bytes: Buffer;
      try {
        bytes = service.vault.get(tenant, photoId);
      } catch {
        throw new HttpError(404, 'no such photo');
      }
      service.audit.record(service.clock.now(), { tenant, actor: who.keyId, action: 'photo.viewed', objectKind: 'photo', objectId: photoId });
      return reply.type('image/jpeg').header('cache-control', 'no-store').send(bytes);
    },
  );

  app.get(
    '/v1/tenants/:tenant/commands',
    {
      schema: {
        summary: 'Commands and their delivery state',
        tags: ['commands'],
        params: TenantParams,
        querystring: { type: 'object', additionalProperties: false, properties: { device: ID, subject: ID, after: { type: 'integer', minimum: 0 }, limit: { type: 'integer', minimum: 1, maximum: 5000 } } },
        response: { 200: { type: 'object', properties: { commands: List } } },
      },
    },
    async (req) => {
      const tenant = tenantOf(req);
      auth.admin(req, tenant, 'commands:read');
      return { commands: service.outbox.list(tenant, req.query as Record<string, never>) };
    },
  );

  app.get(
    '/v1/tenants/:tenant/alarms',
    {
      schema: {
        summary: 'Alarms for the admins (tampered or forged events, door alarms); open ones unless asked otherwise',
        tags: ['alarms'],
        params: TenantParams,
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: { state: { type: 'string', enum: ['open', 'acknowledged', 'all'] }, after: { type: 'integer', minimum: 0 }, limit: { type: 'integer', minimum: 1, maximum: 5000 } },
        },
        response: { 200: { type: 'object', properties: { alarms: List } } },
      },
    },
    async (req) => {
      const tenant = tenantOf(req);
      auth.admin(req, tenant, 'alarms:read');
      return { alarms: service.alarms.list(tenant, req.query as { state?: AlarmState; after?: number; limit?: number }) };
    },
  );

  app.post(
    '/v1/tenants/:tenant/alarms/:alarmId/acknowledge',
    {
      schema: {
        summary: 'Acknowledge an alarm (audited)',
        tags: ['alarms'],
        params: { type: 'object', required: ['tenant', 'alarmId'], properties: { tenant: ID, alarmId: { type: 'integer', minimum: 1 } } },
        response: { 200: { type: 'object', properties: { alarmId: { type: 'integer' }, acknowledgedAt: { type: 'integer' } } } },
      },
    },
    async (req) => {
      const tenant = tenantOf(req);
      const who = auth.admin(req, tenant, 'alarms:acknowledge');
      const { alarmId } = req.params as { alarmId: number };
      const at = service.clock.now();
      const outcome = service.alarms.acknowledge(tenant, alarmId, who.keyId, at);
      if (outcome === 'unknown') throw new HttpError(404, 'no such alarm');
      if (outcome === 'already') throw new HttpError(409, 'the alarm was already acknowledged');
      return { alarmId, acknowledgedAt: at };
    },
  );

  app.get(
    '/v1/tenants/:tenant/audit',
    {
      schema: {
        summary: 'The append-only audit log',
        tags: ['audit'],
        params: TenantParams,
        querystring: { type: 'object', additionalProperties: false, properties: { after: { type: 'integer', minimum: 0 }, limit: { type: 'integer', minimum: 1, maximum: 5000 } } },
        response: { 200: { type: 'object', properties: { entries: List } } },
      },
    },
    async (req) => {
      const tenant = tenantOf(req);
      auth.admin(req, tenant, 'audit:read');
      return { entries: service.audit.list(tenant, req.query as { after?: number; limit?: number }) };
    },
  );
}
