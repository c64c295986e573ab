import { createRequire } from 'node:module';

/**
 * sd_notify(3) for Node: READY=1 when a service can do its job, WATCHDOG=1 at half the
 * interval systemd asks for (WATCHDOG_USEC), STOPPING=1 on shutdown. The socket is a unix
 * datagram socket, which Node's core cannot open, hence the small unix-dgram addon. Outside
 * systemd (no NOTIFY_SOCKET) every call is a no-op.
 */
interface DgramSocket {
  send(buf: Buffer, offset: number, length: number, path: string, cb?: (err?: Error) => void): void;
  on(event: 'error', cb: (err: Error) => void): void;
  close(): void;
}

export interface Notifier {
  readonly enabled: boolean;
  ready(status?: string): void;
  status(text: string): void;
  stopping(): void;
  /** Starts periodic WATCHDOG=1 while healthy() returns true; returns the interval in ms (0: none asked). */
  startWatchdog(healthy?: () => boolean): number;
  close(): void;
}

export function createNotifier(env: NodeJS.ProcessEnv = process.env): Notifier {
  const raw = env.NOTIFY_SOCKET;
  if (!raw) return disabledNotifier;
  // Abstract-namespace sockets are written with a leading "@" and addressed with a NUL byte.
  const path = raw.startsWith('@') ? `\0${raw.slice(1)}` : raw;
  const require = createRequire(import.meta.url);
  const unix = require('unix-dgram') as { createSocket(type: 'unix_dgram'): DgramSocket };
  const socket = unix.createSocket('unix_dgram');
  socket.on('error', () => {
    // A vanished notify socket must never take the service down; systemd will notice on its own.
  });
  let timer: NodeJS.Timeout | undefined;
  const send = (message: string) => {
    const buf = Buffer.from(message);
    socket.send(buf, 0, buf.length, path);
  };
  const watchdogUsec = Number(env.WATCHDOG_USEC ?? 0);
  const watchdogPid = env.WATCHDOG_PID ? Number(env.WATCHDOG_PID) : process.pid;
  return {
    enabled: true,
    ready: (status) => send(status ? `READY=1\nSTATUS=${status}` : 'READY=1'),
    status: (text) => send(`STATUS=${text}`),
    stopping: () => send('STOPPING=1'),
    startWatchdog(healthy = () => true) {
      if (!(watchdogUsec > 0) || watchdogPid !== process.pid) return 0;
      const everyMs = Math.max(50, Math.floor(watchdogUsec / 2000));
      clearInterval(timer);
      timer = setInterval(() => {
        if (healthy()) send('WATCHDOG=1');
      }, everyMs);
      timer.unref();
      return everyMs;
    },
    close() {
      clearInterval(timer);
      socket.close();
    },
  };
}

const disabledNotifier: Notifier = {
  enabled: false,
  ready: () => {},
  status: () => {},
  stopping: () => {},
  startWatchdog: () => 0,
  close: () => {},
};
