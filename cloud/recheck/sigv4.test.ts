import { createHash, createHmac } from 'node:crypto';
// The signer the AWS SDK itself uses (installed with @aws-sdk/client-rekognition).
import { SignatureV4 } from '@smithy/signature-v4';
import { describe, expect, it } from 'vitest';
import { SigV4Error, verifySigV4 } from './sigv4.js';

/** SigV4 verification against requests signed by the SDK's own signer, with and without X-Amz-Target signed. */
class NodeSha256 {
  private readonly h;
  constructor(secret?: string | ArrayBuffer | ArrayBufferView) {
    this.h = secret === undefined ? createHash('sha256') : createHmac('sha256', toBuffer(secret));
  }
  update(data: string | ArrayBuffer | ArrayBufferView): void {
    this.h.update(toBuffer(data));
  }
  async digest(): Promise<Uint8Array> {
    return new Uint8Array(this.h.digest());
  }
  reset(): void {}
}
function toBuffer(d: string | ArrayBuffer | ArrayBufferView): Buffer {
  if (typeof d === 'string') return Buffer.from(d, 'utf8');
  if (ArrayBuffer.isView(d)) return Buffer.from(d.buffer, d.byteOffset, d.byteLength);
  return Buffer.from(d);
}

const credentials = { accessKeyId: 'AKIDCLOCKFACETEST', secretAccessKey: 'test-secret-not-real' };
const signer = new SignatureV4({ service: 'rekognition', region: 'eu-west-1', credentials, sha256: NodeSha256 });
const body = JSON.stringify({ Image: { Bytes: Buffer.from('jpeg bytes').toString('base64') } });

async function signed(unsignable: string[] = []) {
  const req = await signer.sign(
    {
      method: 'POST',
      protocol: 'http:',
      hostname: '127.0.0.1',
      port: 8080,
      path: '/',
      query: {},
      headers: { host: '127.0.0.1:8080', 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': 'RekognitionService.DetectFaces' },
      body,
    },
    { unsignableHeaders: new Set(unsignable) },
  );
  const headers = Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k.toLowerCase(), v]));
  return { method: 'POST', url: '/', headers, body: Buffer.from(body) };
}
const expectation = { service: 'rekognition', region: 'eu-west-1', secretFor: (id: string) => (id === credentials.accessKeyId ? credentials.secretAccessKey : undefined) };

describe('SigV4 verification', () => {
  it('accepts a request the SDK signer signed with X-Amz-Target among the signed headers', async () => {
    const req = await signed();
    expect(req.headers.authorization).toMatch(/SignedHeaders=[^,]*x-amz-target/);
    expect(verifySigV4(req, expectation)).toBe(credentials.accessKeyId);
  });

  it('refuses a correctly signed request that leaves X-Amz-Target unsigned (the operation could be swapped)', async () => {
    const req = await signed(['x-amz-target']);
    expect(req.headers.authorization).not.toMatch(/x-amz-target/);
    expect(() => verifySigV4(req, expectation)).toThrow(SigV4Error);
    expect(() => verifySigV4(req, expectation)).toThrow(/x-amz-target must be signed/);
  });

  it('refuses a signed request whose operation was changed after signing', async () => {
    const req = await signed();
    req.headers['x-amz-target'] = 'RekognitionService.CompareFaces';
    expect(() => verifySigV4(req, expectation)).toThrow(/signature does not match/);
  });
});
