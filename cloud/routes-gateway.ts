import type { FastifyInstance } from 'fastify';
import type { LongPolls } from './long-polls.js';
import type { Auth } from './auth.js';
import type { CloudService } from './service.js';

/** The gateway ↔ cloud API of docs/PROTOCOL.md. The tenant always comes from the token. */
const ID = { type: 'string', pattern: '^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$' } as const;
const UUID = { type: 'string', pattern: '^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$' } as const;
const Error = { type: 'object', properties: { error: { type: 'string' } } } as const;

export function registerGatewayRoutes(app: FastifyInstance, service: CloudService, auth: Auth, opts: { maxWaitSeconds: number; maxBatch: number; longPolls: LongPolls }): void {
  app.post(
    '/v1/gateway/ingest',
    {
      schema: {
        summary: 'Forward a batch of device events; returns per-event results and signed receipts',
        tags: ['gateway'],
        body: {
          type: 'object',
          required: ['events'],
          additionalProperties: false,
          properties: {
            events: {
              type: 'array',
              maxItems: opts.maxBatch,
              items: {
                type: 'object',
                required: ['id', 'tenant', 'device', 'envelope'],
                additionalProperties: false,
                // Ids are checked by ingest, not here: a malformed entry is rejected and recorded, not the whole batch.
                properties: { id: { type: 'string', maxLength: 64 }, tenant: { type: 'string', maxLength: 64 }, device: { type: 'string', maxLength: 64 }, envelope: { type: 'string', maxLength: 700_000 } },
              },
            },
          },
        },
        response: {
          200: {
            type: 'object',
            properties: {
              results: { type: 'array', items: { type: 'object', properties: { id: { type: 'string' }, status: { type: 'string', enum: ['stored', 'duplicate', 'rejected'] }, reason: { type: 'string' } }, required: ['id', 'status'] } },
              receipts: { type: 'array', items: { type: 'object', properties: { tenant: { type: 'string' }, device: { type: 'string' }, envelope: { type: 'string' } } } },
            },
          },
          401: Error,
        },
      },
    },
    async (req) => {
      const gw = auth.gateway(req);
      const { events } = req.body as { events: Array<{ id: string; tenant: string; device: string; envelope: string }> };
      return service.ingest.ingest(gw, events);
    },
  );

  app.get(
    '/v1/gateway/commands',
    {
      schema: {
        summary: 'Long-poll for commands to this gateway’s devices',
        tags: ['gateway'],
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: { cursor: { type: 'string', pattern: '^[0-9]{0,15}$' }, wait: { type: 'number', minimum: 0, maximum: 30 } },
        },
        response: {
          200: {
            type: 'object',
            properties: {
              commands: { type: 'array', items: { type: 'object', properties: { commandId: UUID, tenant: ID, device: ID, envelope: { type: 'string' }, expiresAt: { type: 'integer' } } } },
              cursor: { type: 'string' },
            },
          },
          401: Error,
        },
      },
    },
    async (req) => {
      const gw = auth.gateway(req);
      const q = req.query as { cursor?: string; wait?: number };
      const cursor = Number(q.cursor || 0);
      const waitMs = Math.min(q.wait ?? 0, opts.maxWaitSeconds) * 1000;
      let found = service.outbox.pending(gw.tenant, gw.gateway, cursor);
      if (!found.length && waitMs > 0) {
        req.log.debug({ gateway: gw.gateway, waitMs }, 'long poll waiting');
        await opts.longPolls.wait(
          waitMs,
          (wake) => {
            const onQueued = (tenant: string) => {
              if (tenant === gw.tenant) wake();
            };
            service.outbox.queued.on('queued', onQueued);
            return () => service.outbox.queued.off('queued', onQueued);
          },
          req.raw,
        );
        found = service.outbox.pending(gw.tenant, gw.gateway, cursor);
      }
      const next = found.length ? found[found.length - 1]!.seq : cursor;
      return { commands: found.map(({ seq: _seq, ...c }) => c), cursor: String(next) };
    },
  );

  app.post(
    '/v1/gateway/commands/delivered',
    {
      schema: {
        summary: 'Report commands delivered to devices (MQTT PUBACK)',
        tags: ['gateway'],
        body: {
          type: 'object',
          required: ['delivered'],
          additionalProperties: false,
          properties: { delivered: { type: 'array', maxItems: 5000, items: { type: 'object', required: ['commandId', 'at'], additionalProperties: false, properties: { commandId: UUID, at: { type: 'integer', minimum: 0 } } } } },
        },
        response: { 200: { type: 'object', properties: { updated: { type: 'integer' } } }, 401: Error },
      },
    },
    async (req) => {
      const gw = auth.gateway(req);
      const { delivered } = req.body as { delivered: Array<{ commandId: string; at: number }> };
      return { updated: service.outbox.markDelivered(gw.tenant, gw.gateway, delivered) };
    },
  );

  app.post(
    '/v1/gateway/presence',
    {
      schema: {
        summary: 'Report devices coming online or going offline',
        tags: ['gateway'],
        body: {
          type: 'object',
          required: ['devices'],
          additionalProperties: false,
          properties: {
            devices: {
              type: 'array',
              maxItems: 5000,
              items: { type: 'object', required: ['tenant', 'device', 'state', 'at'], additionalProperties: false, properties: { tenant: ID, device: ID, state: { type: 'string', enum: ['online', 'offline'] }, at: { type: 'integer', minimum: 0 } } },
            },
          },
        },
        response: { 200: { type: 'object', properties: { updated: { type: 'integer' } } }, 401: Error },
      },
    },
    async (req) => {
      const gw = auth.gateway(req);
      const { devices } = req.body as { devices: Array<{ tenant: string; device: string; state: string; at: number }> };
      return { updated: service.registry.presence(gw.tenant, gw.gateway, devices.filter((d) => d.tenant === gw.tenant)) };
    },
  );

  app.get(
    '/v1/gateway/revocations',
    {
      schema: {
        summary: 'Certificate serials the gateway must refuse',
        tags: ['gateway'],
        response: { 200: { type: 'object', properties: { version: { type: 'integer' }, serials: { type: 'array', items: { type: 'string' } } } }, 401: Error },
      },
    },
    async (req) => service.registry.revocations(auth.gateway(req).tenant),
  );
}
