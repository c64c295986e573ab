import { createServer as createHttpServer, type IncomingMessage, type ServerResponse, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { LIMITS, newMessageId, peekHeader, sealAndSign, type KeyPair } from '../../protocol/index.js';

/**
 * Test support: a stand-in for the cloud's gateway API (docs/PROTOCOL.md, "Gateway ↔ cloud")
 * for the gateway's own tests, which need the cloud to misbehave on cue: answer 503, drop a
 * connection mid-request, flip the revocation list, count duplicate deliveries. It implements
 * the same contract (idempotent ingest with signed receipts, long-poll commands, delivery and
 * presence reports). The gateway against the real cloud, including an outage, is
 * tests/cross-tier.test.ts.
 */
export interface StandInCloudOptions {
  tenant: string;
  token: string;
  adminKey: KeyPair;
  /** Serve HTTPS with this certificate; plain HTTP when omitted. */
  tls?: { cert: string; key: string };
  /**
   * Keep each stored event (id, device, envelope) in `events` (default true: tests read them
   * back). The bench only counts ids, and keeping a run's half a million envelopes made the
   * endpoint's garbage collector compete with the gateway for the machine's cores.
   */
  keepEvents?: boolean;
}

export interface StoredEvent {
  id: string;
  device: string;
  envelope: Buffer;
}

export class StandInCloud {
  /** Events in the order they were first stored (empty with keepEvents: false). */
  readonly events: StoredEvent[] = [];
  /** Ids of the events stored, in the order they were first stored. */
  private readonly known = new Set<string>();
  duplicates = 0;
  ingestCalls = 0;
  /** 'up', 'error' (503) or 'reset' (connection dropped without an answer). */
  mode: 'up' | 'error' | 'reset' = 'up';
  readonly delivered: { commandId: string; at: number }[] = [];
  readonly presence: { tenant: string; device: string; state: string; at: number }[] = [];
  revokedSerials: string[] = [];
  /** Ingest answers 400 for any batch holding one of these event ids (a "poison" event). */
  readonly refuseEventIds = new Set<string>();
  /** Presence reports answer 400 for any batch naming one of these devices. */
  readonly refusePresenceOf = new Set<string>();
  /** Presence reports answer 503 while true (the cloud's presence endpoint is down). */
  presenceDown = false;
  revocationFetches = 0;
  revocationVersion = 1;
  private readonly commands: { commandId: string; tenant: string; device: string; envelope: string; expiresAt: number | null }[] = [];
  private readonly waiters = new Set<() => void>();
  private receiptSeq = 0;
  private server: Server | null = null;
  url = '';

  constructor(private readonly opts: StandInCloudOptions) {}

  get storedCount(): number {
    return this.known.size;
  }

  storedIds(): string[] {
    return [...this.known];
  }

  async start(): Promise<string> {
    const handler = (req: IncomingMessage, res: ServerResponse) => void this.handle(req, res);
    this.server = this.opts.tls ? createHttpsServer({ cert: this.opts.tls.cert, key: this.opts.tls.key }, handler) : createHttpServer(handler);
    await new Promise<void>((r) => this.server!.listen(0, '127.0.0.1', () => r()));
    const { port } = this.server.address() as AddressInfo;
    this.url = `${this.opts.tls ? 'https' : 'http'}://127.0.0.1:${port}`;
    return this.url;
  }

  async stop(): Promise<void> {
    for (const w of this.waiters) w();
    this.server?.closeAllConnections();
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
  }

  /** Queues a command for the gateway to fetch (the envelope is made by the caller). */
  queueCommand(device: string, envelope: Buffer, expiresAt: number | null = null): string {
    const commandId = peekHeader(envelope).id;
    this.commands.push({ commandId, tenant: this.opts.tenant, device, envelope: envelope.toString('base64'), expiresAt });
    for (const w of this.waiters) w();
    return commandId;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (this.mode === 'reset') {
      req.socket.destroy();
      return;
    }
    if (this.mode === 'error') return send(res, 503, { error: 'unavailable' });
    if (req.headers.authorization !== `Bearer ${this.opts.token}`) return send(res, 401, { error: 'bad token' });
    const url = new URL(req.url ?? '/', 'http://x');
    const body = req.method === 'POST' ? await readJson(req) : undefined;
    if (body instanceof Error) return send(res, 400, { error: body.message });
    switch (`${req.method} ${url.pathname}`) {
      case 'POST /v1/gateway/ingest': {
        const bad = (body as { events: { id: string }[] }).events.find((e) => this.refuseEventIds.has(e.id));
        if (bad) return send(res, 400, { error: `body/events: event ${bad.id} is malformed` });
        return send(res, 200, this.ingest(body as { events: { id: string; tenant: string; device: string; envelope: string }[] }));
      }
      case 'GET /v1/gateway/commands':
        return this.pollCommands(url, res);
      case 'POST /v1/gateway/commands/delivered':
        this.delivered.push(...(body as { delivered: { commandId: string; at: number }[] }).delivered);
        return send(res, 200, {});
      case 'POST /v1/gateway/presence': {
        const devices = (body as { devices: { device: string }[] }).devices;
        if (this.presenceDown) return send(res, 503, { error: 'unavailable' });
        const bad = devices.find((d) => this.refusePresenceOf.has(d.device));
        if (bad) return send(res, 400, { error: `body/devices: ${bad.device} is malformed` });
        this.presence.push(...(body as { devices: { tenant: string; device: string; state: string; at: number }[] }).devices);
        return send(res, 200, {});
      }
      case 'GET /v1/gateway/revocations':
        this.revocationFetches++;
        return send(res, 200, { version: this.revocationVersion, serials: this.revokedSerials });
      default:
        return send(res, 404, { error: 'no such endpoint' });
    }
  }

  private ingest(body: { events: { id: string; tenant: string; device: string; envelope: string }[] }) {
    this.ingestCalls++;
    const results: { id: string; status: 'stored' | 'duplicate' | 'rejected'; reason?: string }[] = [];
    const byDevice = new Map<string, string[]>();
    for (const e of body.events) {
      let status: 'stored' | 'duplicate' | 'rejected';
      if (e.tenant !== this.opts.tenant) status = 'rejected';
      else if (this.known.has(e.id)) {
        status = 'duplicate';
        this.duplicates++;
      } else {
        status = 'stored';
        this.known.add(e.id);
        if (this.opts.keepEvents !== false) this.events.push({ id: e.id, device: e.device, envelope: Buffer.from(e.envelope, 'base64') });
      }
      results.push(status === 'rejected' ? { id: e.id, status, reason: 'tenant' } : { id: e.id, status });
      if (status === 'rejected') continue;
      const ids = byDevice.get(e.device);
      if (ids) ids.push(e.id);
      else byDevice.set(e.device, [e.id]);
    }
    const receipts = [...byDevice].flatMap(([device, ids]) => {
      const out = [];
      for (let i = 0; i < ids.length; i += LIMITS.ackBatch) {
        const envelope = sealAndSign({
          kind: 'receipt',
          id: newMessageId(),
          tenant: this.opts.tenant,
          device,
          seq: ++this.receiptSeq,
          body: { type: 'ack', tenant: this.opts.tenant, device, eventIds: ids.slice(i, i + LIMITS.ackBatch), at: Date.now() },
          signer: this.opts.adminKey,
        });
        out.push({ tenant: this.opts.tenant, device, envelope: envelope.toString('base64') });
      }
      return out;
    });
    return { results, receipts };
  }

  private pollCommands(url: URL, res: ServerResponse): void {
    const cursor = Number(url.searchParams.get('cursor') ?? '0') || 0;
    const wait = Math.min(30, Number(url.searchParams.get('wait') ?? '0') || 0);
    const answer = () => send(res, 200, { commands: this.commands.slice(cursor), cursor: String(this.commands.length) });
    if (this.commands.length > cursor || wait === 0) return answer();
    const timer = setTimeout(done, wait * 1000);
    const waiter = () => done();
    this.waiters.add(waiter);
    res.on('close', () => {
      clearTimeout(timer);
      this.waiters.delete(waiter);
    });
    function done() {
      clearTimeout(timer);
      if (!res.writableEnded && !res.destroyed) answer();
    }
  }
}

function send(res: ServerResponse, status: number, body: unknown): void {
  if (res.writableEnded || res.destroyed) return;
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    return new Error('body is not JSON');
  }
}
