import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { EngineError, type RecheckEngine } from './engine.js';
import { SigV4Error, verifySigV4 } from './sigv4.js';

/**
 * An HTTP endpoint that speaks the Rekognition JSON protocol (POST /, X-Amz-Target
 * RekognitionService.DetectFaces / CompareFaces, application/x-amz-json-1.1, SigV4) backed by
 * any RecheckEngine. It lets on-premises customers point an AWS SDK at their own face engine
 * and lets tests drive the real SDK client end to end.
 */
export interface RekognitionEndpointOptions {
  engine: RecheckEngine;
  region: string;
  credentials: Record<string, string>;
  host?: string;
  port?: number;
  maxBodyBytes?: number;
  /** Sees each correctly signed request (operation and raw JSON body): audits of what leaves for the engine, tests. */
  onRequest?: (r: { target: string; body: Buffer }) => void;
}

export interface RekognitionEndpoint {
  url: string;
  server: Server;
  /** Requests served, by outcome, for tests and metrics. */
  stats: { ok: number; refused: number };
  close(): Promise<void>;
}

export async function startRekognitionEndpoint(opts: RekognitionEndpointOptions): Promise<RekognitionEndpoint> {
  const stats = { ok: 0, refused: 0 };
  const maxBody = opts.maxBodyBytes ?? 8 * 1024 * 1024;
  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => fail(res, 500, 'InternalServerError', (err as Error).message));
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const c of req) {
      size += (c as Buffer).length;
      if (size > maxBody) return fail(res, 413, 'ImageTooLargeException', 'request too large');
      chunks.push(c as Buffer);
    }
    const body = Buffer.concat(chunks);
    try {
      verifySigV4({ method: req.method ?? 'GET', url: req.url ?? '/', headers: req.headers, body }, { service: 'rekognition', region: opts.region, secretFor: (id) => opts.credentials[id] });
    } catch (err) {
      stats.refused++;
      if (err instanceof SigV4Error) return fail(res, 403, 'InvalidSignatureException', err.message);
      throw err;
    }
    if (req.method !== 'POST') return fail(res, 405, 'UnknownOperationException', 'POST only');
    const target = String(req.headers['x-amz-target'] ?? '');
    opts.onRequest?.({ target, body });
    let input: Record<string, { Bytes?: string } | undefined>;
    try {
      input = JSON.parse(body.toString('utf8')) as typeof input;
    } catch {
      return fail(res, 400, 'SerializationException', 'body is not JSON');
    }
    const image = (field: string) => {
      const b = input[field]?.Bytes;
      if (typeof b !== 'string' || !b.length) throw new EngineError(`${field}.Bytes is required`, false);
      return Buffer.from(b, 'base64');
    };
    try {
      if (target === 'RekognitionService.DetectFaces') {
        const { faces } = await opts.engine.detectFaces(image('Image'));
        stats.ok++;
        return send(res, 200, {
          FaceDetails: faces.map((f) => ({
            Confidence: f.confidence * 100,
            ...(f.box ? { BoundingBox: { Left: f.box.left, Top: f.box.top, Width: f.box.width, Height: f.box.height } } : {}),
          })),
        });
      }
      if (target === 'RekognitionService.CompareFaces') {
        const { similarity } = await opts.engine.compareFaces(image('SourceImage'), image('TargetImage'));
        stats.ok++;
        return send(res, 200, similarity === null ? { FaceMatches: [], UnmatchedFaces: [] } : { FaceMatches: [{ Similarity: similarity * 100, Face: {} }], UnmatchedFaces: [] });
      }
      return fail(res, 400, 'UnknownOperationException', `unknown target ${target.slice(0, 80)}`);
    } catch (err) {
      if (err instanceof EngineError && !err.retryable) return fail(res, 400, 'InvalidParameterException', err.message);
      return fail(res, 503, 'ServiceUnavailableException', (err as Error).message);
    }
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => resolve());
  });
  const addr = server.address() as AddressInfo;
  return {
    url: `http://${addr.address}:${addr.port}`,
    server,
    stats,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

function send(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/x-amz-json-1.1', 'x-amzn-requestid': `local-${Date.now()}` }).end(JSON.stringify(body));
}

function fail(res: ServerResponse, status: number, type: string, message: string): void {
  if (res.headersSent) return;
  res.writeHead(status, { 'content-type': 'application/x-amz-json-1.1', 'x-amzn-errortype': type }).end(JSON.stringify({ __type: type, message }));
}
