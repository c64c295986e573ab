import { readFileSync } from 'node:fs';
import { createServer } from 'node:tls';
import { Aedes } from 'aedes';

/**
 * The bench's third reference broker (a process of its own, so its CPU is measured apart from
 * the load generator's): the gateway's MQTT library, aedes, over the same TLS with client
 * certificates, with nothing of the gateway's job — no rights, no durable queue, no
 * forwarding; QoS 1 PUBACKs from aedes's in-memory persistence. Against it the gateway's
 * figure shows what its own work costs; against bare Mosquitto it shows how far the bench's
 * load generator, not the broker, sets the pace.
 *
 * argv[2]: JSON { port, caFile, certFile, keyFile }. Prints "ready" on stdout once listening.
 */
const opts = JSON.parse(process.argv[2] ?? '') as { port: number; caFile: string; certFile: string; keyFile: string };
const aedes = new Aedes();
await aedes.listen();
const server = createServer(
  { ca: readFileSync(opts.caFile), cert: readFileSync(opts.certFile), key: readFileSync(opts.keyFile), requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.2' },
  (socket) => aedes.handle(socket),
);
server.listen(opts.port, '127.0.0.1', () => process.stdout.write('ready\n'));
process.on('SIGTERM', () => process.exit(0));
