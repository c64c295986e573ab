import { createRequire } from 'node:module';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createNotifier } from './systemd.js';

interface Listener {
  bind(path: string): void;
  on(event: 'message', cb: (msg: Buffer) => void): void;
  close(): void;
}
const unix = createRequire(import.meta.url)('unix-dgram') as { createSocket(t: 'unix_dgram', cb?: (m: Buffer) => void): Listener };

describe('sd_notify', () => {
  it('does nothing outside systemd', () => {
    const n = createNotifier({});
    expect(n.enabled).toBe(false);
    expect(n.startWatchdog()).toBe(0);
  });

  it('sends READY=1 and periodic WATCHDOG=1 to the socket systemd names', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'cf-notify-')), 'notify.sock');
    const received: string[] = [];
    const listener = unix.createSocket('unix_dgram', (m) => received.push(m.toString()));
    listener.bind(path);
    const n = createNotifier({ NOTIFY_SOCKET: path, WATCHDOG_USEC: '200000' });
    n.ready('listening');
    expect(n.startWatchdog()).toBe(100);
    await new Promise((r) => setTimeout(r, 450));
    n.stopping();
    n.close();
    await new Promise((r) => setTimeout(r, 50));
    listener.close();
    expect(received[0]).toBe('READY=1\nSTATUS=listening');
    expect(received.filter((m) => m === 'WATCHDOG=1').length).toBeGreaterThanOrEqual(2);
    expect(received.at(-1)).toBe('STOPPING=1');
  });

  it('skips watchdog pings when the service reports itself unhealthy', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'cf-notify-')), 'notify.sock');
    const received: string[] = [];
    const listener = unix.createSocket('unix_dgram', (m) => received.push(m.toString()));
    listener.bind(path);
    const n = createNotifier({ NOTIFY_SOCKET: path, WATCHDOG_USEC: '100000' });
    n.startWatchdog(() => false);
    await new Promise((r) => setTimeout(r, 250));
    n.close();
    listener.close();
    expect(received).toEqual([]);
  });
});
