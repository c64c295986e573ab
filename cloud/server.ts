import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify';
import { X509Certificate } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { certificateIdentity, normalizeSerial } from '../protocol/cert-identity.js';
import { LIMITS } from '../protocol/index.js';
import { AccessGroupError } from './access-groups.js';
import { allowed, findApiKey, findGateway, type Auth } from './auth.js';
import { HttpError } from './http-errors.js';
import { LongPolls } from './long-polls.js';
import { collectOpenApi } from './openapi.js';
import { RegistryError } from './registry.js';
import { registerAdminRoutes } from './routes-admin.js';
import { registerGatewayRoutes } from './routes-gateway.js';
import { registerSubjectRoutes } from './routes-subjects.js';
import { registerTimesheetRoutes } from './routes-timesheets.js';
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
  /**
   * Tenant CA certificates (PEM) by tenant: with TLS on, gateways may authenticate with a
   * client certificate from their tenant's CA instead of a token.
   */
  tenantCas?: Record<string, string>;
}

/** Reads each tenant's ca.crt from its keys folder, where provisioning writes it. */
export function loadTenantCas(tenants: Array<{ id: string; keysDir: string }>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const t of tenants) {
    const file = join(t.keysDir, 'ca.crt');
    if (existsSync(file)) out[t.id] = readFileSync(file, 'utf8');
  }
  return out;
}

/** How long a stopping cloud lets requests in flight finish before it cuts their connections. */
const CLOSE_GRACE_MS = 1500;

function bearer(req: FastifyRequest): string {
  const h = req.headers.authorization;
  if (!h || !h.startsWith('Bearer ')) throw new HttpError(401, 'missing bearer credentials');
  return h.slice(7).trim();
}

/**
 * A gateway's identity from its TLS client certificate: verified by the TLS layer against the
 * tenant CAs, then pinned to the CA of the tenant its SAN names (one tenant's CA cannot vouch
 * for another's gateway), registered here and not revoked.
 */
function gatewayFromCertificate(req: FastifyRequest, service: CloudService, cas: Map<string, X509Certificate>): { tenant: string; gateway: string } | undefined {
  const socket = req.raw.socket as TLSSocket;
  if (typeof socket.getPeerX509Certificate !== 'function' || !socket.authorized) return undefined;
  const cert = socket.getPeerX509Certificate();
  const who = cert ? certificateIdentity(cert) : null;
  if (!cert || !who || who.role !== 'gateway') return undefined;
  const ca = cas.get(who.tenant);
  if (!ca || !cert.checkIssued(ca) || !cert.verify(ca.publicKey)) return undefined;
  const known = service.db.prepare('SELECT 1 FROM gateways WHERE tenant = ? AND gateway = ? AND revoked_at IS NULL').get(who.tenant, who.id);
  const revoked = service.db.prepare('SELECT 1 FROM revocations WHERE tenant = ? AND serial = ?').get(who.tenant, normalizeSerial(who.serial));
  return known && !revoked ? { tenant: who.tenant, gateway: who.id } : undefined;
}

export async function buildServer(opts: ServerOptions): Promise<FastifyInstance> {
  const { service } = opts;
  const app = Fastify({
    loggerInstance: opts.logger,
    bodyLimit: 16 * 1024 * 1024,
    ...(opts.tls
      ? {
          https: {
            cert: readFileSync(opts.tls.cert),
            key: readFileSync(opts.tls.key),
            // Client certificates are optional (admins and token gateways have none) and checked per request.
            ...(Object.keys(opts.tenantCas ?? {}).length ? { requestCert: true, rejectUnauthorized: false, ca: Object.values(opts.tenantCas!) } : {}),
          },
        }
      : {}),
    ajv: { customOptions: { removeAdditional: false, coerceTypes: 'array', allErrors: false } },
  }) as unknown as FastifyInstance;
  const openapi = collectOpenApi(app, { title: 'Clockface cloud API', version: '1' });

  const cas = new Map(Object.entries(opts.tenantCas ?? {}).map(([t, pem]) => [t, new X509Certificate(pem)] as const));
  const auth: Auth = {
    gateway(req) {
      if (!req.headers.authorization && cas.size) {
        const byCert = gatewayFromCertificate(req, service, cas);
        if (byCert) return byCert;
      }
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
    if (err instanceof HttpError || err instanceof RegistryError || err instanceof AccessGroupError) {
      const status = err instanceof HttpError ? err.statusCode : err.status;
      return reply.code(status).send({ error: err.message });
    }
    if (err.validation) return reply.code(400).send({ error: `invalid request: ${err.message}` });
    if (err.statusCode && err.statusCode >= 400 && err.statusCode < 500) return reply.code(err.statusCode).send({ error: err.message });
    req.log.error({ err, url: req.routeOptions.url }, 'request failed');
    return reply.code(500).send({ error: 'internal error' });
  });

  // A stopping cloud answers its long polls at once and asks every keep-alive client to hang up
  // after its answer, so it exits in well under 2 s instead of sitting out each poll (up to 30 s)
  // and each idle socket (72 s): systemd restarts and failovers are quick. A request still
  // running after the grace period loses its connection; gateways retry, ingest is idempotent.
  const longPolls = new LongPolls();
  app.addHook('preClose', async () => {
    const answered = longPolls.endAll();
    app.log.info({ longPolls: answered }, 'stopping: open long polls answered, connections closing');
    setTimeout(() => app.server.closeAllConnections(), CLOSE_GRACE_MS).unref();
  });
  app.addHook('onSend', async (_req, reply) => {
    if (longPolls.ending) reply.header('connection', 'close');
  });

  app.get('/openapi.json', async () => openapi());
  app.get('/v1/health', { schema: { summary: 'liveness', security: [], response: { 200: { type: 'object', properties: { ok: { type: 'boolean' } } } } } }, async () => ({ ok: true }));
  registerGatewayRoutes(app, service, auth, { maxWaitSeconds: opts.maxWaitSeconds ?? 30, maxBatch: LIMITS.ackBatch, longPolls });
  registerAdminRoutes(app, service, auth);
  registerSubjectRoutes(app, service, auth);
  registerTimesheetRoutes(app, service, auth);
  await app.ready();
  return app;
}
