import { createServer, type AddressInfo } from 'node:net';

/**
 * A loopback TCP port the OS just handed out and released, for a child process that must be
 * told its port up front (Mosquitto, a cloud or gateway started from its config file). Racy in
 * principle: another process could take it before the child binds; on loopback in one test
 * run that has not been seen.
 */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}
