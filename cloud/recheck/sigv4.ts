import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

/**
 * AWS Signature Version 4 verification for a server that speaks an AWS JSON protocol: parses
 * the Authorization header, rebuilds the canonical request from what arrived, and checks the
 * signature with the secret for the access key id. Used by the Rekognition-compatible
 * endpoint so the real AWS SDK can be exercised end to end against the local engine.
 */
export interface SigV4Request {
  method: string;
  /** Path and query as received, e.g. "/" or "/a%20b?x=1". */
  url: string;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

export interface SigV4Expect {
  service: string;
  region: string;
  secretFor: (accessKeyId: string) => string | undefined;
  now?: number;
  maxSkewMs?: number;
}

export class SigV4Error extends Error {}

/** Headers every request must sign: the host, the time and, for the JSON protocol, the operation. */
export const REQUIRED_SIGNED_HEADERS = ['host', 'x-amz-date', 'x-amz-target'] as const;

const sha256 = (data: string | Buffer) => createHash('sha256').update(data).digest('hex');
const hmac = (key: Buffer | string, data: string) => createHmac('sha256', key).update(data, 'utf8').digest();

/** Returns the access key id when the request is correctly signed; throws SigV4Error otherwise. */
export function verifySigV4(req: SigV4Request, expect: SigV4Expect): string {
  const auth = header(req.headers, 'authorization');
  if (!auth) throw new SigV4Error('missing Authorization header');
  const m = /^AWS4-HMAC-SHA256 Credential=([^/\s,]+)\/(\d{8})\/([^/\s,]+)\/([^/\s,]+)\/aws4_request,\s*SignedHeaders=([a-z0-9;-]+),\s*Signature=([0-9a-f]{64})$/.exec(auth);
  if (!m) throw new SigV4Error('Authorization header is not an AWS4-HMAC-SHA256 signature');
  const [, accessKeyId, date, region, service, signedHeaders, signature] = m as unknown as [string, string, string, string, string, string, string];
  if (service !== expect.service) throw new SigV4Error(`credential scope names service ${service}, expected ${expect.service}`);
  if (region !== expect.region) throw new SigV4Error(`credential scope names region ${region}, expected ${expect.region}`);
  const amzDate = header(req.headers, 'x-amz-date');
  if (!amzDate || !/^\d{8}T\d{6}Z$/.test(amzDate)) throw new SigV4Error('missing or malformed X-Amz-Date');
  if (amzDate.slice(0, 8) !== date) throw new SigV4Error('credential scope date does not match X-Amz-Date');
  const when = Date.UTC(+amzDate.slice(0, 4), +amzDate.slice(4, 6) - 1, +amzDate.slice(6, 8), +amzDate.slice(9, 11), +amzDate.slice(11, 13), +amzDate.slice(13, 15));
  if (Math.abs((expect.now ?? Date.now()) - when) > (expect.maxSkewMs ?? 15 * 60_000)) throw new SigV4Error('request time is too far from the server time');
  const names = signedHeaders.split(';');
  // X-Amz-Target names the operation: unsigned, a captured DetectFaces could be replayed as another operation.
  for (const required of REQUIRED_SIGNED_HEADERS) if (!names.includes(required)) throw new SigV4Error(`${required} must be signed`);
  const secret = expect.secretFor(accessKeyId);
  if (!secret) throw new SigV4Error('unknown access key id');

  const [rawPath, rawQuery = ''] = req.url.split('?', 2) as [string, string?];
  const canonicalQuery = rawQuery
    .split('&')
    .filter(Boolean)
    .map((kv) => kv.split('=', 2).map((s) => encodeRfc3986(decodeURIComponent(s ?? ''))) as [string, string?])
    .sort(([a, av], [b, bv]) => (a === b ? ((av ?? '') < (bv ?? '') ? -1 : 1) : a < b ? -1 : 1))
    .map(([k, v]) => `${k}=${v ?? ''}`)
    .join('&');
  const canonicalHeaders = names.map((n) => `${n}:${(header(req.headers, n) ?? '').trim().replace(/\s+/g, ' ')}\n`).join('');
  const payloadHash = header(req.headers, 'x-amz-content-sha256') ?? sha256(req.body);
  if (payloadHash !== 'UNSIGNED-PAYLOAD' && payloadHash !== sha256(req.body)) throw new SigV4Error('payload hash does not match the body');
  const canonicalRequest = [req.method.toUpperCase(), rawPath || '/', canonicalQuery, canonicalHeaders, signedHeaders, payloadHash].join('\n');
  const scope = `${date}/${region}/${service}/aws4_request`;
  const stringToSign = ['AWS4-HMAC-SHA256', amzDate, scope, sha256(canonicalRequest)].join('\n');
  const key = hmac(hmac(hmac(hmac(`AWS4${secret}`, date), region), service), 'aws4_request');
  const expected = createHmac('sha256', key).update(stringToSign, 'utf8').digest();
  if (!timingSafeEqual(expected, Buffer.from(signature, 'hex'))) throw new SigV4Error('signature does not match');
  return accessKeyId;
}

function header(headers: SigV4Request['headers'], name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v.join(',') : v;
}

function encodeRfc3986(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}
