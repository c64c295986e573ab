import { parseArgs } from 'node:util';
import { loadConfig } from '../common/config.js';
import { createLogger } from '../common/log.js';
import { Registry as Metrics } from '../common/metrics.js';
import { startOpsServer } from '../common/ops-server.js';
import { createNotifier } from '../common/systemd.js';
import { createApiKey, ROLES, type Role } from './auth.js';
import { CloudConfig, resolvePaths } from './config.js';
import { createEngine } from './recheck/engines.js';
import { RecheckWorker } from './recheck/worker.js';
import { Sweeper } from './retention.js';
import { buildServer, loadTenantCas } from './server.js';
import { CardHashUpgrade } from './card-hash-upgrade.js';
import { CloudService } from './service.js';

/**
 * `clockface cloud --config FILE` runs the API, the re-check worker and the retention
 * sweeper; `clockface cloud api-key create --config FILE --tenant T --role owner` bootstraps
 * a tenant's first key (printed once).
 */
// Retention sweeps unlink many files in parallel through libuv's pool (4 threads by default).
// Set before the pool first starts; an operator's own setting wins.
process.env.UV_THREADPOOL_SIZE ??= '16';

const USAGE = `Usage:
  clockface cloud --config FILE
  clockface cloud api-key create --config FILE --tenant TENANT --role owner|admin|reviewer|auditor
  clockface cloud sweep --config FILE        run one retention sweep and exit`;

function load(file: string | undefined) {
  if (!file) throw new Error(`--config FILE is required\n${USAGE}`);
  const { config, baseDir } = loadConfig(CloudConfig, { file });
  return resolvePaths(config, baseDir);
}

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: { config: { type: 'string' }, tenant: { type: 'string' }, role: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
    allowPositionals: true,
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const [cmd, sub] = positionals;
  if (cmd === 'api-key' && sub === 'create') {
    const config = load(values.config);
    const tenant = values.tenant;
    const role = values.role as Role | undefined;
    if (!tenant || !config.tenants.some((t) => t.id === tenant)) throw new Error(`--tenant must name a tenant in the config (${config.tenants.map((t) => t.id).join(', ') || 'none configured'})`);
    if (!role || !ROLES.includes(role)) throw new Error(`--role must be one of ${ROLES.join(', ')}`);
    const service = new CloudService({ dataDir: config.dataDir, tenants: config.tenants, keyringFile: config.vault.keyring });
    try {
      const { keyId, key } = createApiKey(service.db, tenant, role, Date.now());
      service.audit.record(Date.now(), { tenant, actor: 'cli', action: 'api-key.created', objectKind: 'api-key', objectId: keyId, detail: { role } });
      console.log(JSON.stringify({ tenant, role, keyId, key }));
    } finally {
      service.close();
    }
    return 0;
  }
  if (cmd === 'sweep') {
    const config = load(values.config);
    const service = new CloudService({ dataDir: config.dataDir, tenants: config.tenants, keyringFile: config.vault.keyring });
    try {
      console.log(JSON.stringify(await new Sweeper(service, { batchSize: config.retention.batchSize }).sweepAll()));
    } finally {
      service.close();
    }
    return 0;
  }
  if (cmd !== undefined) {
    console.error(`clockface cloud: unknown command "${positionals.join(' ')}"\n${USAGE}`);
    return 2;
  }
  return serve(load(values.config));
}

async function serve(config: CloudConfig): Promise<number> {
  const log = createLogger({ name: 'cloud', level: config.log.level });
  const notifier = createNotifier();
  const service = new CloudService({ dataDir: config.dataDir, tenants: config.tenants, keyringFile: config.vault.keyring });
  const metrics = new Metrics();
  const app = await buildServer({ service, logger: log, tls: config.http.tls, tenantCas: loadTenantCas(config.tenants) });
  const address = await app.listen({ host: config.http.host, port: config.http.port });
  const sweeper = new Sweeper(service, { batchSize: config.retention.batchSize, log });
  const engine = config.recheck.engine === 'none' ? null : createEngine(config.recheck, log);
  const worker = engine ? new RecheckWorker(service, engine, config.recheck, log) : null;
  sweeper.start(config.retention.sweepIntervalMs);
  worker?.start();
  const cardHashes = new CardHashUpgrade(service, log);
  cardHashes.start();
  const ingested = metrics.counter('clockface_cloud_ingest_events_total', 'events received from gateways, by result');
  service.ingest.onResults = (results) => results.forEach((r) => ingested.inc({ status: r.status }));
  // Every refused event is logged with its device and reason (never its bytes), so a rejection leaves a trace besides the counter.
  service.ingest.onRejected = (r) => log.warn({ tenant: r.tenant, gateway: r.gateway, device: r.device, eventId: r.eventId, code: r.code, reason: r.reason }, 'event rejected');
  const alarmsRaised = metrics.counter('clockface_cloud_alarms_raised_total', 'admin alarms raised, by kind');
  service.alarms.onRaised = (a) => {
    alarmsRaised.inc({ kind: a.kind });
    log.warn({ tenant: a.tenant, alarm: a.id, kind: a.kind, device: a.device, objectId: a.objectId }, 'ALARM raised for the tenant\'s admins');
  };
  metrics.gauge('clockface_cloud_alarms_open', 'admin alarms not yet acknowledged').collect(() => service.alarms.openCount());
  const swept = metrics.counter('clockface_cloud_photos_swept_total', 'photos deleted by retention');
  sweeper.onSwept = (n) => swept.inc(undefined, n);
  metrics.gauge('clockface_cloud_recheck_pending', 'punches waiting for a re-check').collect(
    () => service.db.prepare("SELECT COUNT(*) FROM punches WHERE recheck_state = 'pending'").pluck().get() as number,
  );
  metrics.gauge('clockface_cloud_recheck_dead_letter', 'punches whose re-check kept failing').collect(
    () => service.db.prepare("SELECT COUNT(*) FROM punches WHERE recheck_state = 'dead-letter'").pluck().get() as number,
  );
  const ops = await startOpsServer({ port: config.ops.port, registry: metrics, health: () => ({ ok: true, tenants: config.tenants.length }) });
  log.info({ address, ops: ops.url, tenants: config.tenants.length, recheck: config.recheck.engine }, 'cloud ready');
  notifier.ready('serving');
  notifier.startWatchdog();

  await new Promise<void>((resolve) => {
    process.once('SIGTERM', resolve);
    process.once('SIGINT', resolve);
  });
  notifier.stopping();
  const stopping = performance.now();
  log.info('cloud stopping');
  sweeper.stop();
  // The API and the re-check worker wind down side by side: neither waits on the other.
  await Promise.all([app.close(), cardHashes.stop(), (async () => {
    await worker?.stop();
    await engine?.close();
  })()]);
  await ops.close();
  service.close();
  log.info({ stopMs: Math.round(performance.now() - stopping) }, 'cloud stopped');
  notifier.close();
  return 0;
}
