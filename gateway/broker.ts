import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { createServer as createTlsServer, TLSSocket, type Server as TlsServer, type TlsOptions } from 'node:tls';
import { Aedes, type AuthenticateError, type Client, type PublishPacket } from 'aedes';
import { WebSocketServer, createWebSocketStream } from 'ws';
import type { Logger } from '../common/log.js';
import { DoorDecision, LIMITS, Status, parseTopic, topicFor, type Channel } from '../protocol/index.js';
import { certificateIdentity } from '../protocol/cert-identity.js';
import { maySubscribe, publishRights, sessionId, type ClientIdentity } from './authz.js';
import { refuseWithConnack } from './connack-refusal.js';
import { PeerRefusal, checkPeer, peerAddress } from './peer-check.js';
import { readEventHeader } from './event-header.js';
import { GroupCommit } from './group-commit.js';
import type { GatewayMetrics } from './metrics.js';
import { guardPacketSize } from './packet-guard.js';
import type { EventCopy, GatewayStore } from './store.js';
import { AdmissionQueue, PublishThrottle } from './throttle.js';

/**
 * The site broker: aedes behind TLS with client certificates from the tenant CA.
 *  - admission: gateway/peer-check.ts names every refusal (no certificate, another CA, out of
 *    date, another tenant, revoked, no broker rights) and it is logged with the peer's address
 *    and the presented serial; an unverified connection gets CONNACK 5 from
 *    gateway/connack-refusal.ts and is closed, never reaching aedes;
 *  - identity: the certificate's SAN (tenant, role, id); the MQTT client id is replaced by a
 *    session name derived from it, so nobody can claim to be someone else;
 *  - rights: gateway/authz.ts, checked on every publish and subscribe;
 *  - durability: an event is committed to SQLite (group commit, on the event writer's
 *    thread) before authorizePublish calls back, and aedes writes the PUBACK only after that;
 *  - limits: packet size (from the fixed header), publish rate, QoS 1 inflight window.
 * aedes speaks MQTT 3.1 and 3.1.1; a refused publish therefore ends the connection (3.1.1
 * has no way to refuse a single publish), a refused subscription gets SUBACK 0x80.
 */
export interface BrokerLimits {
  maxPacketBytes: number;
  publishRate: number;
  publishBurst: number;
  maxInflight: number;
}

export interface BrokerHooks {
  /** A device subscribed to its ack or cmd topic: deliver what is waiting. */
  onDeviceSubscribed?(device: string, channel: 'ack' | 'cmd'): void;
  /** A device PUBACKed a message the gateway sent it. */
  onDeviceAck?(device: string, channel: Channel, payload: Buffer): void;
  onDeviceDisconnected?(device: string): void;
  /** A status message (including a Last Will) was accepted. */
  onPresence?(device: string, state: 'online' | 'offline', at: number): void;
  onEventsQueued?(count: number): void;
}

export interface SiteBrokerOptions {
  tenant: string;
  tls: { ca: string; cert: string; key: string };
  host: string;
  port: number;
  wsPort?: number | null;
  limits: BrokerLimits;
  store: GatewayStore;
  /**
   * Commits a group of events durably (resolving only once they are on disk); the gateway
   * passes gateway/event-writer.ts (a worker thread). Default: the store's own connection.
   */
  appendEvents?: (events: QueuedEvent[]) => EventCopy[] | Promise<EventCopy[]>;
  log: Logger;
  metrics: GatewayMetrics;
  isRevoked: (serial: string) => boolean;
  hooks?: BrokerHooks;
}

interface ClientState {
  who: ClientIdentity;
  /** The topics this client may publish to (gateway/authz.ts), with their channels. */
  publishes: ReadonlyMap<string, Channel>;
  throttle: PublishThrottle;
  admissions: AdmissionQueue;
  inflight: number;
}

interface QueuedEvent {
  id: string;
  device: string;
  envelope: Buffer;
}

export class SiteBroker {
  readonly aedes: Aedes;
  private tlsServer: TlsServer | null = null;
  private wsHttps: HttpsServer | null = null;
  private wss: WebSocketServer | null = null;
  /** Per client, from preConnect on (a WeakMap: wills are published after disconnect). */
  private readonly states = new WeakMap<Client, ClientState>();
  private readonly refusals = new WeakMap<Client, PeerRefusal>();
  /** TLS connections whose certificate verified against the tenant CA (admit()). */
  private readonly admitted = new WeakSet<TLSSocket>();
  /** Each TCP connection's peer address, noted on arrival (see rememberPeerAddresses). */
  private readonly tcpPeers = new WeakMap<Socket, string>();
  private readonly connected = new Set<Client>();
  /** Events committed to the queue and PUBACKed: aedes's publish() of them only completes (see constructor). */
  private readonly queued = new WeakSet<PublishPacket>();
  private readonly writer: GroupCommit<QueuedEvent>;
  private readonly log: Logger;

  constructor(private readonly opts: SiteBrokerOptions) {
    this.log = opts.log;
    const append = opts.appendEvents ?? ((items: QueuedEvent[]) => opts.store.appendEvents(items));
    this.writer = new GroupCommit<QueuedEvent>(
      async (items) => this.reportCopies(await append(items)),
      (size) => {
        if (size === 0) return;
        opts.metrics.commitBatch.observe(size);
        opts.metrics.eventsQueued.inc(undefined, size);
        opts.hooks?.onEventsQueued?.(size);
      },
    );
    this.aedes = new Aedes({
      id: `gateway-${opts.tenant}`,
      connectTimeout: 10_000,
      keepaliveLimit: 600,
      preConnect: (client, packet, done) => this.preConnect(client, packet, done),
      authenticate: (client, _user, _password, done) => this.authenticate(client, done),
      authorizePublish: (client, packet, done) => this.authorizePublish(client, packet, done),
      authorizeSubscribe: (client, sub, done) => {
        const state = this.states.get(client);
        if (state && maySubscribe(state.who, sub.topic)) return done(null, sub);
        opts.metrics.publishesRefused.inc({ reason: 'subscribe-not-allowed' });
        this.log.warn({ session: client.id, reason: 'subscribe-not-allowed', filter: sub.topic.slice(0, 120) }, 'subscription refused: outside the certificate\'s rights');
        done(null, null);
      },
    });
    this.skipRoutingOfQueuedEvents();
    this.wireEvents();
  }

  /**
   * After the PUBACK of a client's QoS 1 publish, aedes hands the packet to its own publish()
   * (retained store, offline queues, topic matching, the emitter) and only then reads that
   * client's next packets. An event is the cloud's, on its way through the durable queue, and
   * nobody may subscribe to an events topic (gateway/authz.ts), so for a queued event that
   * routing finds no one and costs a good part of the broker's time per event: it is skipped,
   * and aedes goes straight on to the client's next packets. Every other publish (status,
   * door, wills, what the gateway sends devices) is routed as before.
   */
  private skipRoutingOfQueuedEvents(): void {
    const route = this.aedes.publish;
    const queued = this.queued;
    (this.aedes as { publish: (packet: PublishPacket, ...rest: unknown[]) => void }).publish = function (this: Aedes, packet, ...rest) {
      if (!queued.has(packet)) return route.call(this, packet, ...(rest as [never]));
      queued.delete(packet);
      const done = rest[rest.length - 1];
      if (typeof done === 'function') done(null);
    };
  }

  async start(): Promise<{ port: number; wsPort: number | null }> {
    await this.aedes.listen();
    const tlsOptions: TlsOptions = {
      ca: this.opts.tls.ca,
      cert: this.opts.tls.cert,
      key: this.opts.tls.key,
      requestCert: true,
      // The certificate is still verified against the tenant CA; gateway/peer-check.ts reads
      // the result after the handshake so a refusal can be named, and admit() refuses every
      // unverified connection before aedes sees it.
      rejectUnauthorized: false,
      minVersion: 'TLSv1.2',
    };
    const server = createTlsServer(tlsOptions, (socket) => {
      if (this.admit(socket, 'mqtt')) this.accept(socket);
    });
    this.rememberPeerAddresses(server);
    server.on('tlsClientError', (err, socket) => this.handshakeFailed(err, socket));
    this.tlsServer = server;
    const port = await listen(server, this.opts.host, this.opts.port);
    let wsPort: number | null = null;
    if (this.opts.wsPort !== undefined && this.opts.wsPort !== null) {
      const https = createHttpsServer(tlsOptions);
      // Ahead of the HTTP layer's own listener: a refused socket is closed before any request is read.
      https.prependListener('secureConnection', (socket: TLSSocket) => void this.admit(socket, 'ws'));
      this.rememberPeerAddresses(https);
      https.on('tlsClientError', (err, socket) => this.handshakeFailed(err, socket));
      const wss = new WebSocketServer({ server: https, maxPayload: this.opts.limits.maxPacketBytes });
      wss.on('connection', (ws, req) => {
        if (!(req.socket instanceof TLSSocket) || !this.admitted.has(req.socket)) return ws.terminate();
        const stream = createWebSocketStream(ws);
        guardPacketSize(stream, this.opts.limits.maxPacketBytes, (n) => this.oversize(n));
        this.aedes.handle(stream, req);
      });
      this.wsHttps = https;
      this.wss = wss;
      wsPort = await listen(https, this.opts.host, this.opts.wsPort);
    }
    return { port, wsPort };
  }

  /** Publishes an envelope to a device's ack or cmd topic with QoS 1 (the device's PUBACK is reported via onDeviceAck). */
  publishToDevice(device: string, channel: 'ack' | 'cmd', envelope: Buffer): void {
    const packet: PublishPacket = { cmd: 'publish', topic: topicFor(this.opts.tenant, device, channel), payload: envelope, qos: 1, retain: false, dup: false };
    this.aedes.publish(packet, (err) => {
      if (err) this.log.warn({ err, device, channel }, 'publish to device failed; it stays queued');
    });
  }

  /**
   * New server key, certificate and CA for handshakes from now on (SIGHUP after a rotation);
   * connected terminals keep their sessions, since their TLS is already established.
   */
  reloadTls(tls: { ca: string; cert: string; key: string }): void {
    const context = { ca: tls.ca, cert: tls.cert, key: tls.key, minVersion: 'TLSv1.2' as const };
    this.tlsServer?.setSecureContext(context);
    this.wsHttps?.setSecureContext(context);
  }

  /** Disconnects every connected client whose certificate is now revoked. */
  enforceRevocations(): number {
    let dropped = 0;
    for (const client of this.connected) {
      const state = this.states.get(client);
      if (state && this.opts.isRevoked(state.who.serial)) {
        this.log.warn({ session: client.id, reason: 'revoked', serial: state.who.serial }, 'certificate revoked: disconnecting');
        this.opts.metrics.connectsRefused.inc({ reason: 'revoked-while-connected' });
        client.close();
        dropped++;
      }
    }
    return dropped;
  }

  connectedDevices(): string[] {
    return [...this.connected].map((c) => this.states.get(c)).filter((s) => s?.who.role === 'device').map((s) => s!.who.id);
  }

  get connectionCount(): number {
    return this.connected.size;
  }

  /**
   * Graceful stop: refuse new connections, let every event already received reach the disk
   * (and its PUBACK go out), then close the clients and the broker.
   */
  async close(): Promise<void> {
    const closing = [
      this.tlsServer ? new Promise<void>((r) => this.tlsServer!.close(() => r())) : Promise.resolve(),
      this.wsHttps ? new Promise<void>((r) => this.wsHttps!.close(() => r())) : Promise.resolve(),
    ];
    await this.writer.drained();
    this.wss?.close();
    await new Promise<void>((r) => this.aedes.close(() => r()));
    await this.writer.drained();
    await Promise.all(closing);
  }

  /**
   * The TLS stage: a connection whose certificate did not verify is logged with its reason,
   * the peer's address and the presented serial, answered CONNACK 5 (MQTT port) and closed;
   * nothing of it reaches aedes.
   * Verified ones go on to aedes, whose CONNECT runs the identity stage (identify()).
   */
  private admit(socket: TLSSocket, port: 'mqtt' | 'ws'): boolean {
    const verdict = checkPeer(socket, { tenant: this.opts.tenant, isRevoked: this.opts.isRevoked });
    if (verdict instanceof PeerRefusal && verdict.stage === 'tls') {
      this.opts.metrics.connectsRefused.inc({ reason: 'tls' });
      this.opts.metrics.tlsRefused.inc({ reason: verdict.reason });
      this.logRefusal(verdict, socket);
      // The MQTT port answers its CONNECT with "not authorized"; the WebSocket port never upgrades.
      if (port === 'mqtt') refuseWithConnack(socket);
      else socket.destroy();
      return false;
    }
    this.admitted.add(socket);
    return true;
  }

  /**
   * A failed handshake is reported on a TLS socket that is already closed, whose address Node
   * no longer knows; so each TCP connection's address is noted when it arrives, keyed by the
   * TCP socket (the TLS socket's `_parent`: Node's own name for the socket it wraps).
   */
  private rememberPeerAddresses(server: TlsServer | HttpsServer): void {
    server.prependListener('connection', (raw: Socket) => {
      const address = peerAddress(raw);
      if (address) this.tcpPeers.set(raw, address);
    });
  }

  private addressOf(socket: TLSSocket): string | undefined {
    const raw = (socket as unknown as { _parent?: Socket })._parent;
    return peerAddress(socket) ?? (raw ? this.tcpPeers.get(raw) : undefined);
  }

  /** The handshake itself failed (the client refused our certificate, no common protocol, not TLS at all). */
  private handshakeFailed(err: Error, socket: TLSSocket): void {
    const code = (err as NodeJS.ErrnoException).code;
    this.opts.metrics.connectsRefused.inc({ reason: 'tls' });
    this.opts.metrics.tlsRefused.inc({ reason: 'handshake-failed' });
    this.log.warn({ reason: 'handshake-failed', stage: 'tls', peer: this.addressOf(socket), code, detail: err.message.slice(0, 200) }, 'connection refused');
  }

  private logRefusal(refusal: PeerRefusal, socket: TLSSocket | undefined): void {
    this.log.warn({ reason: refusal.reason, stage: refusal.stage, peer: socket ? this.addressOf(socket) : undefined, serial: refusal.serial, detail: refusal.detail }, 'connection refused');
  }

  /**
   * Other bytes under an event id already queued: a tampered copy, or the device's own re-seal
   * (gateway/store.ts eventInserter). Queued for the cloud to judge; logged with the device
   * and counted here, because this is where such a copy would otherwise pass unnoticed.
   */
  private reportCopies(copies: readonly EventCopy[]): void {
    for (const c of copies) {
      this.opts.metrics.eventCopies.inc({ device: c.device });
      this.log.warn({ device: c.device, eventId: c.id, queuedAs: c.key }, 'a second copy of a queued event with other bytes; forwarded for the cloud to verify');
    }
  }

  private accept(socket: TLSSocket): void {
    guardPacketSize(socket, this.opts.limits.maxPacketBytes, (n) => this.oversize(n, socket));
    socket.on('error', () => {
      // aedes reports connection errors through clientError; nothing to add here.
    });
    this.aedes.handle(socket);
  }

  private oversize(declared: number, socket?: TLSSocket): void {
    this.opts.metrics.violations.inc({ limit: 'packet-size' });
    const cert = socket?.getPeerX509Certificate();
    const who = cert ? certificateIdentity(cert) : null;
    this.log.warn({ reason: 'packet-too-large', declaredBytes: declared, max: this.opts.limits.maxPacketBytes, client: who ? `${who.role}:${who.id}` : undefined }, 'oversized packet: disconnecting');
  }

  private socketOf(client: Client): TLSSocket | undefined {
    const socket = client.conn instanceof TLSSocket ? client.conn : client.req?.socket;
    return socket instanceof TLSSocket ? socket : undefined;
  }

  private identify(client: Client): ClientIdentity | PeerRefusal {
    const socket = this.socketOf(client);
    // admit() let only verified sockets through; anything else here is refused all the same.
    if (!socket || !socket.authorized || !this.admitted.has(socket)) return new PeerRefusal('no-certificate', 'tls', 'no verified client certificate');
    // Checked again at CONNECT, not reused from the handshake: a revocation list may have arrived in between.
    return checkPeer(socket, { tenant: this.opts.tenant, isRevoked: this.opts.isRevoked });
  }

  private preConnect(client: Client, packet: { clientId: string; clean?: boolean }, done: (err: Error | null, ok: boolean) => void): void {
    const who = this.identify(client);
    if (who instanceof PeerRefusal) {
      this.refusals.set(client, who);
    } else {
      this.states.set(client, { who, publishes: publishRights(who), throttle: new PublishThrottle(this.opts.limits.publishRate, this.opts.limits.publishBurst), admissions: new AdmissionQueue(), inflight: 0 });
      packet.clientId = sessionId(who, packet.clientId);
      // aedes reports a device's PUBACK with the message it acknowledges (the 'ack' event) only
      // for persistent sessions, and that PUBACK is what releases a command from the store. So
      // device sessions are persistent whatever the device asked for; the store, not the
      // session, remains the record of what is still owed to the device.
      if (who.role === 'device') packet.clean = false;
    }
    done(null, true);
  }

  private authenticate(client: Client, done: (err: AuthenticateError | null, ok: boolean | null) => void): void {
    const refusal = this.refusals.get(client) ?? (this.states.has(client) ? undefined : new PeerRefusal('no-identity', 'identity', 'not authorized'));
    if (refusal) {
      this.opts.metrics.connectsRefused.inc({ reason: refusal.reason });
      this.logRefusal(refusal, this.socketOf(client));
      const err = Object.assign(new Error(refusal.detail), { returnCode: 5 }) as AuthenticateError;
      return done(err, false);
    }
    done(null, true);
  }

  private authorizePublish(client: Client | null, packet: PublishPacket, done: (err?: Error | null) => void): void {
    const state = client ? this.states.get(client) : undefined;
    if (!client || !state) return done(new Error('publish from an unidentified client'));
    const refuse = (reason: string, message: string) => {
      this.opts.metrics.publishesRefused.inc({ reason });
      this.log.warn({ session: client.id, reason, topic: packet.topic.slice(0, 120) }, `publish refused: ${message}`);
      done(new Error(message));
    };
    const channel = state.publishes.get(packet.topic);
    if (!channel) return refuse('topic-not-allowed', 'topic outside the certificate\'s rights');
    // Over the rate: admitted late (gateway/throttle.ts), which also pauses reading this client.
    const wait = state.throttle.take();
    if (wait === null) {
      this.opts.metrics.violations.inc({ limit: 'rate' });
      return refuse('rate', `flood: more than ${this.opts.limits.publishBurst} publishes over ${this.opts.limits.publishRate}/s waiting at once`);
    }
    if (wait === 0 && state.admissions.idle) return this.admitPublish(state, channel, packet, refuse, done);
    this.opts.metrics.publishesThrottled.inc();
    state.admissions.schedule(wait, () => {
      // A client that left while it waited gets nothing processed (no late "online" status).
      if (!this.connected.has(client)) return done(new Error('client disconnected while throttled'));
      this.admitPublish(state, channel, packet, refuse, done);
    });
  }

  private admitPublish(state: ClientState, channel: Channel, packet: PublishPacket, refuse: (reason: string, message: string) => void, done: (err?: Error | null) => void): void {
    const { who } = state;
    const payload = Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload);
    if (channel === 'events') {
      if (payload.length > LIMITS.eventEnvelopeBytes) return refuse('too-large', `event of ${payload.length} bytes`);
      let header;
      try {
        header = readEventHeader(payload);
      } catch (err) {
        return refuse('malformed', `not an envelope (${(err as Error).message.slice(0, 80)})`);
      }
      if (header.kind !== 'event' || header.tenant !== who.tenant || header.device !== who.id) {
        return refuse('context-mismatch', 'envelope header does not match the certificate');
      }
      if (state.inflight >= this.opts.limits.maxInflight) {
        this.opts.metrics.violations.inc({ limit: 'inflight' });
        return refuse('inflight', `more than ${this.opts.limits.maxInflight} events awaiting PUBACK`);
      }
      // Events are routed to the cloud, never retained or fanned out by the broker.
      packet.retain = false;
      state.inflight++;
      this.writer.add({ id: header.id, device: who.id, envelope: payload }, (err) => {
        state.inflight--;
        if (err) this.log.error({ reason: queueRefusalReason(err), err }, 'durable queue write failed: no PUBACK, the device will retry');
        else this.queued.add(packet);
        done(err);
      });
      return;
    }
    let body: unknown;
    try {
      body = JSON.parse(payload.toString('utf8'));
    } catch {
      return refuse('malformed', `${channel} payload is not JSON`);
    }
    if (channel === 'status') {
      const status = Status.safeParse(body);
      if (!status.success || status.data.tenant !== who.tenant || status.data.device !== who.id) {
        return refuse('malformed', 'status does not match the Status schema or the certificate');
      }
      this.opts.hooks?.onPresence?.(who.id, status.data.state, status.data.at);
      return this.acknowledgeInOrder(state, done);
    }
    const door = DoorDecision.safeParse(body);
    if (!door.success || door.data.tenant !== who.tenant || door.data.device !== who.id) {
      return refuse('malformed', 'door decision does not match the DoorDecision schema or the certificate');
    }
    this.acknowledgeInOrder(state, done);
  }

  /**
   * Lets aedes PUBACK a status or door message only after the client's events received before
   * it: MQTT 3.1.1 (4.6) has a receiver PUBACK QoS 1 messages in the order they arrived, and an
   * event's PUBACK waits for its commit. Without events in flight, at once.
   */
  private acknowledgeInOrder(state: ClientState, done: (err?: Error | null) => void): void {
    if (state.inflight === 0) return done(null);
    this.writer.afterQueued(() => done(null));
  }

  private wireEvents(): void {
    const { metrics, hooks } = this.opts;
    this.aedes.on('clientReady', (client) => {
      const state = this.states.get(client);
      if (!state) return;
      this.connected.add(client);
      metrics.connections.set(this.countRole(state.who.role), { role: state.who.role });
      this.log.info({ session: client.id, serial: state.who.serial }, 'client connected');
      // A persistent session may come back with its subscriptions already in place.
      if (state.who.role === 'device') {
        const restored = Object.keys((client as Client & { subscriptions?: Record<string, unknown> }).subscriptions ?? {});
        for (const filter of restored) {
          if (!maySubscribe(state.who, filter)) continue;
          const channel = parseTopic(filter).channel;
          if (channel === 'ack' || channel === 'cmd') hooks?.onDeviceSubscribed?.(state.who.id, channel);
        }
      }
    });
    this.aedes.on('clientDisconnect', (client) => {
      const state = this.states.get(client);
      if (!this.connected.delete(client) || !state) return;
      metrics.connections.set(this.countRole(state.who.role), { role: state.who.role });
      this.log.info({ session: client.id }, 'client disconnected');
      if (state.who.role !== 'device') return;
      hooks?.onDeviceDisconnected?.(state.who.id);
      // The broker is the authority on the link: a dropped connection (revoked, killed, network)
      // is "offline" even when no Last Will arrives. A session taken over by a new connection
      // of the same device is not.
      const stillThere = [...this.connected].some((c) => this.states.get(c)?.who.id === state.who.id && this.states.get(c)?.who.role === 'device');
      if (!stillThere) hooks?.onPresence?.(state.who.id, 'offline', Date.now());
    });
    this.aedes.on('clientError', (client, err) => {
      this.log.info({ session: client.id, err: { message: err.message } }, 'client dropped');
    });
    this.aedes.on('subscribe', (subs, client) => {
      const state = this.states.get(client);
      if (!state || state.who.role !== 'device') return;
      for (const s of subs) {
        // The event also lists refused subscriptions (granted 0x80): only act on allowed ones.
        if (!maySubscribe(state.who, s.topic)) continue;
        const channel = parseTopic(s.topic).channel;
        if (channel === 'ack' || channel === 'cmd') hooks?.onDeviceSubscribed?.(state.who.id, channel);
      }
    });
    this.aedes.on('ack', (packet, client) => {
      const state = client ? this.states.get(client) : undefined;
      if (!state || !packet || packet.cmd !== 'publish') return;
      if (!maySubscribe(state.who, packet.topic)) return;
      const payload = Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload);
      hooks?.onDeviceAck?.(state.who.id, parseTopic(packet.topic).channel, payload);
    });
  }

  private countRole(role: string): number {
    let n = 0;
    for (const c of this.connected) if (this.states.get(c)?.who.role === role) n++;
    return n;
  }
}

function listen(server: TlsServer | HttpsServer, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

/** Why a durable write failed, as a log reason: a full disk (or queue quota) is the one facilities staff can act on. */
function queueRefusalReason(err: Error): string {
  const code = (err as { code?: string }).code;
  return code === 'SQLITE_FULL' || /full/i.test(err.message) ? 'queue-full' : 'queue-write-failed';
}
