import { parseArgs } from 'node:util';
import { createLogger } from '../common/log.js';
import { createNotifier } from '../common/systemd.js';
import { loadGatewayConfig } from './config.js';
import { startGateway } from './gateway.js';

const USAGE = `Usage: clockface gateway --config FILE

Runs the site gateway: an MQTTS broker for the site's terminals (client certificates from the
tenant CA), a durable queue on disk, forwarding to the cloud, and commands back down.
Health and Prometheus metrics on the ops port (localhost). Stops cleanly on SIGTERM/SIGINT;
SIGHUP reloads the server key, certificate and CA without dropping connected terminals.`;

export async function run(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({ args: argv, options: { config: { type: 'string', short: 'c' }, help: { type: 'boolean', short: 'h' } } }));
  } catch (err) {
    console.error(`clockface gateway: ${(err as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  if (!values.config) {
    console.error(`clockface gateway: --config FILE is required\n\n${USAGE}`);
    return 2;
  }
  const config = loadGatewayConfig(values.config);
  const log = createLogger({ name: 'gateway', level: config.log.level });
  const gateway = await startGateway(config, { log });
  const notifier = createNotifier();
  notifier.ready(`MQTTS on ${gateway.mqttPort}`);
  // The watchdog proves the event loop turns and the store is open; a cloud outage is not a reason to restart.
  notifier.startWatchdog(() => gateway.store.db.open);

  return new Promise<number>((resolve) => {
    const stop = (signal: string) => {
      log.info({ signal }, 'shutting down');
      notifier.stopping();
      gateway.close().then(
        () => {
          notifier.close();
          log.flush?.();
          resolve(0);
        },
        (err: unknown) => {
          log.error({ err }, 'shutdown failed');
          resolve(1);
        },
      );
    };
    // systemd's ExecReload (and the installer, after a rotated bundle) sends SIGHUP.
    process.on('SIGHUP', () => {
      try {
        gateway.reloadTls();
      } catch (err) {
        log.error({ err: (err as Error).message }, 'TLS reload failed; new connections keep the previous certificate');
      }
    });
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
}
