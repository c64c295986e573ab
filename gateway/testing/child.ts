import { spawn, type ChildProcess } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Test support: runs `clockface gateway --config FILE` as a real child process (from the
 * TypeScript sources), and waits for its "gateway ready" log line to learn its ports.
 */
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

export interface GatewayProcess {
  child: ChildProcess;
  mqttPort: number;
  opsUrl: string | null;
  /** Resolves with the exit code (or the signal name) when the process ends. */
  exited: Promise<number | string>;
  stderr: () => string;
}

export function spawnGateway(configFile: string): Promise<GatewayProcess> {
  const child = spawn(process.execPath, ['--import', join(root, 'gateway/testing/register-ts.mjs'), join(root, 'cli/main.ts'), 'gateway', '--config', configFile], {
    cwd: root,
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, NOTIFY_SOCKET: '' },
  });
  let err = '';
  const exited = new Promise<number | string>((resolve) => child.once('exit', (code, signal) => resolve(signal ?? code ?? -1)));
  return new Promise((resolve, reject) => {
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (chunk: string) => {
      err += chunk;
      if (err.length > 200_000) err = err.slice(-100_000);
      const ready = /"mqttPort":(\d+).*?"ops":(null|"[^"]*").*"msg":"gateway ready"/.exec(err);
      if (ready) {
        resolve({ child, mqttPort: Number(ready[1]), opsUrl: ready[2] === 'null' ? null : JSON.parse(ready[2]!), exited, stderr: () => err });
      }
    });
    void exited.then((code) => reject(new Error(`gateway exited (${code}) before it was ready:\n${err.slice(-2000)}`)));
  });
}
