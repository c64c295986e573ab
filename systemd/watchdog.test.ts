import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundleEntry } from '../provisioning/test-support.js';

/**
 * The sd_notify path as systemd sees it: the test owns a unix datagram socket, starts a real
 * service process with NOTIFY_SOCKET and WATCHDOG_USEC pointing at it, and reads what arrives.
 */
interface DgramServer {
  bind(path: string): void;
  on(event: 'message', cb: (msg: Buffer) => void): void;
  on(event: 'error', cb: (err: Error) => void): void;
  close(): void;
}
const require = createRequire(import.meta.url);
const unix = require('unix-dgram') as { createSocket(type: 'unix_dgram', onMessage?: (msg: Buffer) => void): DgramServer };

let dir: string;
let bundled: { file: string; remove(): void };

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'cf-notify-'));
  bundled = await bundleEntry('systemd/test-fixtures/notify-service.ts', 'notify-service');
});
afterAll(() => {
  bundled?.remove();
  rmSync(dir, { recursive: true, force: true });
});

/**
 * Resolves when `predicate` holds for the messages received so far; rejects if the child
 * exits first while still expected to run (a crash shows as a failure, not a hang).
 */
function waitFor(messages: string[], socket: DgramServer, predicate: (m: string[]) => boolean, child?: ChildProcess): Promise<void> {
  if (predicate(messages)) return Promise.resolve();
  return new Promise((resolve, reject) => {
    socket.on('message', () => {
      if (predicate(messages)) resolve();
    });
    child?.once('exit', (code, signal) => {
      if (!predicate(messages)) reject(new Error(`service exited (${code ?? signal}) after: ${JSON.stringify(messages)}`));
    });
  });
}

describe('systemd notify protocol', () => {
  it('a service sends READY=1, then periodic WATCHDOG=1, then STOPPING=1 on SIGTERM', async () => {
    const path = join(dir, 'notify.sock');
    const messages: string[] = [];
    const socket = unix.createSocket('unix_dgram', (msg) => messages.push(msg.toString('utf8')));
    socket.on('error', () => {});
    socket.bind(path);
    let child: ChildProcess | undefined;
    try {
      child = spawn(process.execPath, [bundled.file], {
        env: { PATH: process.env.PATH, NOTIFY_SOCKET: path, WATCHDOG_USEC: '200000' },
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      await waitFor(messages, socket, (m) => m.filter((x) => x === 'WATCHDOG=1').length >= 3, child);
      const ready = messages.findIndex((m) => m.startsWith('READY=1'));
      expect(ready).toBeGreaterThanOrEqual(0);
      expect(messages[ready]).toMatch(/STATUS=ops http:\/\/127\.0\.0\.1:\d+; watchdog every 100 ms/);
      // READY comes once, before any watchdog ping is relied on, and every other message is a ping.
      expect(messages.filter((m) => m.startsWith('READY=1'))).toHaveLength(1);
      expect(messages.filter((m, i) => i !== ready).every((m) => m === 'WATCHDOG=1')).toBe(true);

      child.kill('SIGTERM');
      const [code] = (await once(child, 'exit')) as [number | null];
      expect(code).toBe(0);
      expect(messages).toContain('STOPPING=1');
    } finally {
      if (child && child.exitCode === null) child.kill('SIGKILL');
      socket.close();
    }
  });

  it('without WATCHDOG_USEC it sends READY=1 and no pings (systemd did not ask for any)', async () => {
    const path = join(dir, 'notify2.sock');
    const messages: string[] = [];
    const socket = unix.createSocket('unix_dgram', (msg) => messages.push(msg.toString('utf8')));
    socket.on('error', () => {});
    socket.bind(path);
    const child = spawn(process.execPath, [bundled.file], { env: { PATH: process.env.PATH, NOTIFY_SOCKET: path }, stdio: 'ignore' });
    try {
      await waitFor(messages, socket, (m) => m.some((x) => x.startsWith('READY=1')), child);
      child.kill('SIGTERM');
      const [code] = (await once(child, 'exit')) as [number | null];
      expect(code).toBe(0);
      await waitFor(messages, socket, (m) => m.includes('STOPPING=1'));
      expect(messages.filter((m) => m === 'WATCHDOG=1')).toEqual([]);
      expect(messages[0]).toMatch(/watchdog every 0 ms/);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
      socket.close();
    }
  });
});
