/**
 * The service lifecycle every Clockface role follows under systemd, reduced to its bones so
 * the watchdog test can run it as a real child process: start the localhost ops server, send
 * READY=1 once it answers, ping WATCHDOG=1 while /health is ok, send STOPPING=1 and exit 0 on
 * SIGTERM. Uses only common/ (systemd.ts, ops-server.ts, metrics.ts).
 */
import { Registry } from '../../common/metrics.js';
import { startOpsServer } from '../../common/ops-server.js';
import { createNotifier } from '../../common/systemd.js';

const notifier = createNotifier();
const registry = new Registry();
const ops = await startOpsServer({ host: '127.0.0.1', port: 0, registry, health: () => ({ ok: true }) });

// The stop handler goes in before READY: systemd may stop a service the moment it is ready.
process.on('SIGTERM', () => {
  notifier.stopping();
  void ops.close().then(() => {
    notifier.close();
    process.exit(0);
  });
});

const everyMs = notifier.startWatchdog(() => true);
notifier.ready(`ops ${ops.url}; watchdog every ${everyMs} ms`);
