import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { newMessageId } from '../protocol/index.js';
import { ingestBody, ingestPart, ingestRequest, type IngestEvent } from './cloud-client.js';

/** What the ingest body must equal: the plain JSON encoding of the batch. */
const asJson = (events: readonly IngestEvent[]) => ({
  events: events.map((e) => ({ id: e.id, tenant: e.tenant, device: e.device, envelope: e.envelope.toString('base64') })),
});

describe('ingestBody', () => {
  it('is the JSON of the batch, envelopes in base64, byte for byte what JSON.stringify writes', () => {
    const events = Array.from({ length: 50 }, (_, i) => ({ id: newMessageId(), tenant: 'acme', device: `door-${i % 7}`, envelope: randomBytes(1 + i * 37) }));
    const body = ingestBody(events);
    expect(JSON.parse(body.toString('utf8'))).toEqual(asJson(events));
    expect(body.equals(Buffer.from(JSON.stringify(asJson(events))))).toBe(true);
  });

  it('escapes the short fields and handles the empty batch and empty envelopes', () => {
    const odd = [{ id: 'a"b\\c', tenant: 'ténant\u2028', device: '\u0000x', envelope: Buffer.alloc(0) }];
    expect(JSON.parse(ingestBody(odd).toString('utf8'))).toEqual(asJson(odd));
    expect(ingestBody([]).toString()).toBe('{"events":[]}');
  });

  it('gives any contiguous part of a batch the body that batch part would have on its own', () => {
    const events = Array.from({ length: 9 }, (_, i) => ({ id: newMessageId(), tenant: 'acme', device: `door-${i}`, envelope: randomBytes(3 + i * 11) }));
    const request = ingestRequest(events);
    expect(request.body.equals(ingestBody(events))).toBe(true);
    for (const [from, to] of [[0, 9], [0, 5], [5, 9], [4, 5], [3, 3]] as const) {
      expect(ingestPart(request, from, to).equals(ingestBody(events.slice(from, to)))).toBe(true);
    }
  });
});
