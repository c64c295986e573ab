import { request as httpRequest, Agent as HttpAgent } from 'node:http';
import { request as httpsRequest, Agent as HttpsAgent } from 'node:https';
import { z } from 'zod';

/**
 * The gateway's side of the gateway↔cloud HTTP contract (docs/PROTOCOL.md). JSON over HTTPS
 * with the gateway's bearer token; envelopes travel as base64. This module knows the wire
 * shapes and nothing about queues or brokers.
 */
export class CloudError extends Error {
  override readonly name = 'CloudError';
  constructor(
    message: string,
    /** HTTP status, or 0 when the request never got an answer (refused, timeout, TLS). */
    readonly status: number,
    /** The TLS stack's code when the cloud's certificate was refused (e.g. UNABLE_TO_GET_ISSUER_CERT_LOCALLY). */
    readonly tlsCode: string | null = null,
  ) {
    super(message);
  }
  /** 401/403: the token is wrong or revoked. Retrying will not help; someone must act. */
  get isAuthFailure(): boolean {
    return this.status === 401 || this.status === 403;
  }
  /** The cloud's certificate is not trusted (wrong cloud.ca, expired, wrong name): someone must act. */
  get isTrustFailure(): boolean {
    return this.tlsCode !== null;
  }
}

/** OpenSSL's verdicts on a peer certificate, as Node reports them in `err.code`. */
const CERTIFICATE_REFUSALS = new Set([
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_SIGNATURE_FAILURE',
  'CERT_NOT_YET_VALID',
  'CERT_HAS_EXPIRED',
  'CERT_REVOKED',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'INVALID_CA',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/** A request error as a CloudError; a refused cloud certificate says so and what to check. */
function requestError(method: string, url: URL, err: Error & { code?: string }): CloudError {
  if (err instanceof CloudError) return err;
  const code = err.code ?? '';
  if (CERTIFICATE_REFUSALS.has(code)) {
    return new CloudError(
      `${method} ${url.pathname}: the cloud's certificate at ${url.host} is not trusted (${code}: ${err.message}); cloud.ca must name the CA that signed it, and its names must include ${url.hostname}`,
      0,
      code,
    );
  }
  return new CloudError(`${method} ${url.pathname}: ${err.message}`, 0);
}

const B64 = z.string().regex(/^[A-Za-z0-9+/]*={0,2}$/, 'must be base64');

export const IngestResponse = z.object({
  results: z.array(
    z.object({ id: z.string(), status: z.enum(['stored', 'duplicate', 'rejected']), reason: z.string().optional() }),
  ),
  receipts: z.array(z.object({ tenant: z.string(), device: z.string(), envelope: B64 })).default([]),
});
export type IngestResponse = z.infer<typeof IngestResponse>;

export const CommandsResponse = z.object({
  commands: z.array(
    z.object({
      commandId: z.string(),
      tenant: z.string(),
      device: z.string(),
      envelope: B64,
      expiresAt: z.number().int().nullable().optional(),
    }),
  ),
  cursor: z.string().nullable(),
});
export type CommandsResponse = z.infer<typeof CommandsResponse>;

export const RevocationsResponse = z.object({
  version: z.union([z.string(), z.number()]),
  serials: z.array(z.string().regex(/^[0-9a-fA-F]+$/)),
});
export type RevocationsResponse = z.infer<typeof RevocationsResponse>;

export interface CloudClientOptions {
  url: string;
  token: string;
  /** PEM of the CA that signed the cloud's server certificate (else the system store). */
  ca?: string;
  timeoutMs?: number;
}

export interface IngestEvent {
  id: string;
  tenant: string;
  device: string;
  envelope: Buffer;
}

/**
 * The ingest request body, `{"events":[{"id","tenant","device","envelope"}...]}` with the
 * envelopes in base64, written straight into one buffer. The usual way (JSON.stringify of the
 * whole batch, then Buffer.from) builds a string of some 300 KB per batch, scans it for escapes
 * and encodes it again, which was ~4% of the broker's thread under load; here only the short
 * fields go through JSON.stringify and the base64 text is copied in as it is.
 *
 * With the body come each event's item bounds in it (`starts`, `ends`), so a part of the batch
 * (gateway/poison.ts splits a refused batch in halves) is sent by slicing, not encoding again.
 * The body is not a slice of Node's shared buffer pool, so it can be moved from the reading thread
 * (gateway/forward-reader.ts) to the broker's without a copy.
 */
export interface IngestRequest {
  body: Buffer;
  starts: number[];
  ends: number[];
}

export function ingestRequest(events: readonly IngestEvent[]): IngestRequest {
  const heads: string[] = [];
  const envelopes: string[] = [];
  let size = '{"events":[]}'.length + Math.max(0, events.length - 1);
  for (const e of events) {
    const head = `{"id":${JSON.stringify(e.id)},"tenant":${JSON.stringify(e.tenant)},"device":${JSON.stringify(e.device)},"envelope":"`;
    const envelope = e.envelope.toString('base64');
    heads.push(head);
    envelopes.push(envelope);
    size += Buffer.byteLength(head) + envelope.length + '"}'.length;
  }
  const body = Buffer.allocUnsafeSlow(size);
  const starts: number[] = [];
  const ends: number[] = [];
  let at = body.write('{"events":[', 0, 'latin1');
  for (let i = 0; i < heads.length; i++) {
    if (i > 0) at += body.write(',', at, 'latin1');
    starts.push(at);
    at += body.write(heads[i]!, at, 'utf8');
    at += body.write(envelopes[i]!, at, 'latin1');
    at += body.write('"}', at, 'latin1');
    ends.push(at);
  }
  at += body.write(']}', at, 'latin1');
  if (at !== size) throw new Error(`ingest body: wrote ${at} of ${size} bytes`);
  return { body, starts, ends };
}

export function ingestBody(events: readonly IngestEvent[]): Buffer {
  return ingestRequest(events).body;
}

/** The body of a request for its events from..to-1 (a contiguous part of the batch). */
export function ingestPart(request: IngestRequest, from: number, to: number): Buffer {
  if (from === 0 && to === request.starts.length) return request.body;
  const items = from < to ? request.body.subarray(request.starts[from], request.ends[to - 1]) : Buffer.alloc(0);
  return Buffer.concat([Buffer.from('{"events":['), items, Buffer.from(']}')]);
}

export class CloudClient {
  private readonly base: URL;
  private readonly agent: HttpAgent | HttpsAgent;

  constructor(private readonly opts: CloudClientOptions) {
    this.base = new URL(opts.url);
    if (this.base.protocol !== 'https:' && this.base.protocol !== 'http:') throw new Error(`cloud url must be https (got ${this.base.protocol})`);
    this.agent =
      this.base.protocol === 'https:'
        ? new HttpsAgent({ keepAlive: true, maxSockets: 4, ...(opts.ca ? { ca: opts.ca } : {}) })
        : new HttpAgent({ keepAlive: true, maxSockets: 4 });
  }

  async ingest(events: readonly IngestEvent[]): Promise<IngestResponse> {
    return this.ingestEncoded(ingestBody(events));
  }

  /** Sends a body made by ingestBody / ingestPart. */
  async ingestEncoded(body: Buffer): Promise<IngestResponse> {
    return IngestResponse.parse(await this.call('POST', '/v1/gateway/ingest', body));
  }

  async commands(cursor: string | null, waitSeconds: number, signal?: AbortSignal): Promise<CommandsResponse> {
    const q = new URLSearchParams({ wait: String(waitSeconds) });
    if (cursor !== null) q.set('cursor', cursor);
    const timeout = (this.opts.timeoutMs ?? 15_000) + waitSeconds * 1000;
    return CommandsResponse.parse(await this.call('GET', `/v1/gateway/commands?${q}`, undefined, timeout, signal));
  }

  async delivered(delivered: readonly { commandId: string; at: number }[]): Promise<void> {
    await this.call('POST', '/v1/gateway/commands/delivered', { delivered });
  }

  async presence(devices: readonly { tenant: string; device: string; state: 'online' | 'offline'; at: number }[]): Promise<void> {
    await this.call('POST', '/v1/gateway/presence', { devices });
  }

  async revocations(): Promise<RevocationsResponse> {
    return RevocationsResponse.parse(await this.call('GET', '/v1/gateway/revocations'));
  }

  close(): void {
    this.agent.destroy();
  }

  /** `body`: a value to send as JSON, or a body already encoded (ingestBody). */
  private call(method: string, path: string, body?: unknown, timeoutMs = this.opts.timeoutMs ?? 15_000, signal?: AbortSignal): Promise<unknown> {
    const url = new URL(path, this.base);
    const payload = body === undefined ? undefined : Buffer.isBuffer(body) ? body : Buffer.from(JSON.stringify(body));
    const request = url.protocol === 'https:' ? httpsRequest : httpRequest;
    return new Promise((resolve, reject) => {
      const req = request(
        url,
        {
          method,
          agent: this.agent,
          headers: {
            authorization: `Bearer ${this.opts.token}`,
            accept: 'application/json',
            ...(payload ? { 'content-type': 'application/json', 'content-length': payload.length } : {}),
          },
          ...(signal ? { signal } : {}),
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', (err) => reject(new CloudError(`${method} ${url.pathname}: ${err.message}`, 0)));
          res.on('end', () => {
            const status = res.statusCode ?? 0;
            const text = Buffer.concat(chunks).toString('utf8');
            if (status < 200 || status > 299) {
              reject(new CloudError(`${method} ${url.pathname} answered ${status}: ${text.slice(0, 200)}`, status));
              return;
            }
            if (text.length === 0) return resolve({});
            try {
              resolve(JSON.parse(text));
            } catch {
              reject(new CloudError(`${method} ${url.pathname} answered ${status} with a body that is not JSON`, 502));
            }
          });
        },
      );
      req.setTimeout(timeoutMs, () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
      req.on('error', (err) => reject(requestError(method, url, err)));
      req.end(payload);
    });
  }
}
