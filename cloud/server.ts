import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify';
import { readFileSync } from 'node:fs';
import { LIMITS } from '../protocol/index.js';
import { allowed, findApiKey, findGateway, type ApiKeyIdentity, type Permission } from './auth.js';
import { HttpError } from './http-errors.js';
import { collectOpenApi } from './openapi.js';
import { RegistryError } from './registry.js';
import { registerAdminRoutes } from './routes-admin.js';
import { registerGatewayRoutes } from './routes-gateway.js';
import { registerSubjectRoutes } from './routes-subjects.js';
import type { CloudService } from './service.js';
import type { Logger } from '../common/log.js';

/**
 * The cloud HTTP API (Fastify). Gateways authenticate with their token, admins with a
 * per-tenant API key; every admin route carries {tenant} and the key must belong to it, so
 * nothing crosses tenants. Schemas validate every request; /openapi.json describes them.
 */
export interface ServerOptions {
  service: CloudService;
  logger?: Logger;
  tls?: { cert: string; key: string } | null;
  /** Longest a command long-poll may wait (tests shorten it). */
  maxWaitSeconds?: number;
}

export interface Auth {
  gateway(req: FastifyRequest): { tenant: string; gateway: string };
  admin(req: FastifyRequest, tenant: string, permission: Permission): ApiKeyIdentity;
}

function bearer(req: FastifyRequest): string {
  const h = req.headers.authorization;
  if (!h || !h.startsWith('Bearer ')) throw new HttpError(401, 'missing bearer credentials');
  return h.slice(7).trim();
}

export async function buildServer(opts: ServerOptions): Promise<FastifyInstance> {
  const { service } = opts;
  const app = Fastify({
    loggerInstance: opts.logger,
    bodyLimit: 16 * 1024 * 1024,
    ...(opts.tls ? { https: { cert: readFileSync(opts.tls.cert), key: readFileSync(opts.tls.key) } } : {}),
    ajv: { customOptions: { removeAdditional: false, coerceTypes: 'array', allErrors: false } },
  }) as unknown as FastifyInstance;
  const openapi = collectOpenApi(app, { title: 'Clockface cloud API', version: '1' });

  const auth: Auth = {
    gateway(req) {
      const gw = findGateway(service.db, bearer(req));
      if (!gw) throw new HttpError(401, 'unknown gateway token');
      return gw;
    },
    admin(req, tenant, permission) {
      const key = findApiKey(service.db, bearer(req));
      if (!key) throw new HttpError(401, 'unknown API key');
      // Same answer for "other tenant" and "no such tenant": no probing across tenants.
      if (key.tenant !== tenant) throw new HttpError(403, 'this key is not valid for that tenant');
      if (!allowed(key.role, permission)) throw new HttpError(403, `role ${key.role} may not ${permission}`);
      return key;
    },
  };

  app.setErrorHandler((err: Error & { statusCode?: number; validation?: unknown }, req, reply) => {
    if (err instanceof HttpError || err instanceof RegistryError) {
      const status = err instanceof HttpError ? err.statusCode : err.status;
      return reply.code(status).send({ error: err.message });
    }
    if (err.validation) return reply.code(400).send({ error: `invalid request: ${err.message}` });
    if (err.statusCode && err.statusCode >= 400 && err.statusCode < 500) return reply.code(err.statusCode).send({ error: err.message });
    req.log.error({ err, url: req.routeOptions.url }, 'request failed');
    return reply.code(500).send({ error: 'internal error' });
  });

  app.get('/openapi.json', async () => openapi());
  app.get('/v1/health', { schema: { summary: 'liveness', security: [], response: { 200: { type: 'object', properties: { ok: { type: 'boolean' } } } } } }, async () => ({ ok: true }));
  registerGatewayRoutes(app, service, auth, { maxWaitSeconds: opts.maxWaitSeconds ?? 30, maxBatch: LIMITS.ackBatch });
  registerAdminRoutes(app, service, auth);
  registerSubjectRoutes(app, service, auth);
  await app.ready();
  return app;
}
