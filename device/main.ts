import { FaceConfig } from './face/engine.js';
import { WasmTerminalFaceEngine } from './face/terminal-engine.js';
import { parseArgs } from 'node:util';
import { dirname, resolve } from 'node:path';
import { loadConfig, ConfigError } from '../common/config.js';
import { createLogger } from '../common/log.js';
import { createNotifier } from '../common/systemd.js';
import { DeviceConfig } from './config.js';
import { startDeviceService } from './service.js';

/** `clockface device --config FILE`: runs the wall terminal until SIGTERM/SIGINT. */
export async function run(argv: string[]): Promise<number> {
  let file: string | undefined;
  try {
    file = parseArgs({ args: argv, options: { config: { type: 'string' } }, strict: true }).values.config;
  } catch (err) {
    console.error(`clockface device: ${(err as Error).message}\nusage: clockface device --config FILE`);
    return 2;
  }
  if (!file) {
    console.error('usage: clockface device --config FILE');
    return 2;
  }
  let config: DeviceConfig;
  try {
    config = loadConfig(DeviceConfig, { file }).config;
  } catch (err) {
    console.error(`clockface device: ${err instanceof ConfigError ? err.message : (err as Error).message}`);
    return 2;
  }
  const log = createLogger({ name: 'device', level: config.log.level });
  const notifier = createNotifier();
  // A face engine that cannot load (models missing, backend broken) must not keep the door
  // shut for badge users: face checks then fail closed and card (+PIN) keeps working.
  let face: WasmTerminalFaceEngine | null = null;
  try {
    face = await WasmTerminalFaceEngine.create(FaceConfig.parse(config.face));
    log.info({ backend: face.engine.backend, model: face.model }, 'face engine ready');
  } catch (err) {
    log.error({ err }, 'face engine failed to load; face checks fail closed');
  }
  const service = await startDeviceService({ config, baseDir: dirname(resolve(file)), log, face, notifier, credentialsDirectory: process.env.CREDENTIALS_DIRECTORY });
  log.info({ tenant: config.tenant, device: config.device, mode: config.mode }, 'terminal running');
  // systemd's ExecReload (and the installer, after a rotated bundle) sends SIGHUP.
  const onReload = () => {
    log.info('SIGHUP: reloading the MQTT key, certificate and CA');
    service.reloadCredentials().then(
      () => log.info('link switched to the reloaded credentials'),
      (err: unknown) => log.error({ err: (err as Error).message }, 'credentials reload failed; the link keeps its previous credentials'),
    );
  };
  process.on('SIGHUP', onReload);
  await new Promise<void>((done) => {
    const stop = () => done();
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });
  process.off('SIGHUP', onReload);
  log.info('stopping: relay to rest, link closed, outbox kept');
  await service.stop();
  notifier.close();
  return 0;
}
