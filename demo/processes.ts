import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Runs Clockface roles as real child processes, the way systemd does: each gets its own
 * NOTIFY_SOCKET, and "started" means the service itself sent READY=1 — not that a port
 * happened to open. Logs go to one file per process so a failed run can be read afterwards.
 */
interface DgramListener {
  bind(path: string): void;
  close(): void;
}
const unix = createRequire(import.meta.url)('unix-dgram') as {
  createSocket(type: 'unix_dgram', onMessage: (msg: Buffer) => void): DgramListener;
};

/** The compiled CLI: beside this file when it runs from dist/, else the build of the sources (tests). */
const besideThis = fileURLToPath(new URL('../cli/main.js', import.meta.url));
export const CLI_PATH = existsSync(besideThis) ? besideThis : fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));

export interface RoleProcess {
  name: string;
  child: ChildProcess;
  logFile: string;
  /** Every sd_notify message the process sent, in order. */
  notifications: string[];
  stop(signal?: NodeJS.Signals, graceMs?: number): Promise<number | null>;
}

export interface StartOptions {
  name: string;
  args: string[];
  logDir: string;
  env?: NodeJS.ProcessEnv;
  readyTimeoutMs?: number;
}

/**
 * The environment a role inherits: this process's, without the test campaign's knobs
 * (CLOCKFACE_SOAK, CLOCKFACE_FUZZ_*). They share the CLOCKFACE_ prefix with the config overrides,
 * so a role would read them as config keys ("soak", "fuzzScale") and refuse to start.
 */
export function inheritedEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^CLOCKFACE_(SOAK|FUZZ_[A-Z_]+)$/.test(k)));
}

export async function startRole(opts: StartOptions): Promise<RoleProcess> {
  mkdirSync(opts.logDir, { recursive: true });
  const socketPath = join(opts.logDir, `${opts.name}.notify`);
  const logFile = join(opts.logDir, `${opts.name}.log`);
  const notifications: string[] = [];
  let onReady: () => void = () => {};
  const ready = new Promise<void>((resolve) => (onReady = resolve));
  const listener = unix.createSocket('unix_dgram', (msg) => {
    const text = msg.toString();
    notifications.push(text);
    if (text.split('\n').includes('READY=1')) onReady();
  });
  rmSync(socketPath, { force: true }); // a restart of the same role reuses the path
  listener.bind(socketPath);
  const log = createWriteStream(logFile, { flags: 'a' }); // a restarted role keeps its earlier lines
  const child = spawn(process.execPath, [CLI_PATH, ...opts.args], {
    env: { ...inheritedEnv(), ...opts.env, NOTIFY_SOCKET: socketPath },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout.pipe(log, { end: false });
  child.stderr.pipe(log, { end: false });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const timeoutMs = opts.readyTimeoutMs ?? 60_000;
  let timer: NodeJS.Timeout | undefined;
  const outcome = await Promise.race([
    ready.then(() => 'ready' as const),
    exited.then((code) => `exited with code ${code}` as const),
    new Promise<string>((resolve) => (timer = setTimeout(() => resolve(`not ready after ${timeoutMs} ms`), timeoutMs))),
  ]);
  clearTimeout(timer);
  let released = false;
  const stop = async (signal: NodeJS.Signals = 'SIGTERM', graceMs = 10_000) => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill(signal);
      const killer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(killer);
    }
    // Once: closing the unix-dgram socket a second time aborts the whole process (a native assertion).
    if (!released) {
      released = true;
      listener.close();
      log.end();
    }
    return child.exitCode;
  };
  if (outcome !== 'ready') {
    await stop('SIGKILL');
    throw new Error(`${opts.name} did not start: ${outcome} (log: ${logFile})`);
  }
  return { name: opts.name, child, logFile, notifications, stop };
}
