import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  Ack,
  DoorDecision,
  ProtocolError,
  Status,
  assertId,
  canonicalCardNumber,
  canonicalJson,
  cardHash,
  hashPin,
  newSubjectId,
  parseJson,
  parseMessage,
  parseTopic,
  topics,
  verifyPin,
} from './index.js';
import { exampleAck, exampleDoor, exampleStatus } from './fixtures.js';

describe('ids and topics', () => {
  it('builds and parses every channel', () => {
    for (const channel of ['events', 'ack', 'cmd', 'status', 'door'] as const) {
      const topic = topics[channel]('acme', 'door-1');
      expect(topic).toBe(`cf/v1/acme/door-1/${channel}`);
      expect(parseTopic(topic)).toEqual({ tenant: 'acme', device: 'door-1', channel });
    }
    expect(topics.tenantWildcard('acme', 'door')).toBe('cf/v1/acme/+/door');
  });

  it.each(['door/1', 'door+', '#', 'Door', '-door', 'door-', '', 'a\u0000b', 'x'.repeat(64), 'dö'])('refuses the id %j', (bad) => {
    expect(() => topics.events('acme', bad)).toThrow(ProtocolError);
    expect(() => assertId('device', bad)).toThrow(/device id/);
  });

  it.each(['cf/v1/acme/door-1', 'cf/v1/acme/+/events', 'cf/v2/acme/d/events', 'cf/v1/acme/d/other', 'cf/v1/acme/d/events/x'])(
    'refuses the topic %j',
    (bad) => {
      expect(() => parseTopic(bad)).toThrow(/topic.invalid/);
    },
  );

  it('property: no generated id that passes validation contains a topic metacharacter', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 70 }), (s) => {
        let ok = true;
        try {
          assertId('device', s);
        } catch {
          ok = false;
        }
        if (ok) expect(/[+#/]/.test(s) || s.includes('\0')).toBe(false);
      }),
      { numRuns: 2000 },
    );
  });

  it('makes opaque subject ids that are valid ids', () => {
    const id = newSubjectId();
    expect(assertId('subject', id)).toBe(id);
    expect(newSubjectId()).not.toBe(id);
  });
});

describe('canonical JSON', () => {
  it('sorts keys at every depth and drops undefined', () => {
    expect(canonicalJson({ b: 1, a: { d: [3, { z: 1, y: 2 }], c: undefined } })).toBe('{"a":{"d":[3,{"y":2,"z":1}]},"b":1}');
  });
  it('refuses values that have no stable encoding', () => {
    expect(() => canonicalJson({ x: NaN })).toThrow(/encoding.not-canonical/);
    expect(() => canonicalJson({ x: new Date() })).toThrow(/plain objects/);
    expect(() => canonicalJson({ x: 1n })).toThrow(/bigint/);
  });
  it('property: equal values give equal bytes whatever the key order', () => {
    fc.assert(
      fc.property(fc.dictionary(fc.string(), fc.jsonValue()), (obj) => {
        const reversed = Object.fromEntries(Object.entries(obj).reverse());
        expect(canonicalJson(reversed)).toBe(canonicalJson(obj));
        expect(JSON.parse(canonicalJson(obj))).toEqual(JSON.parse(JSON.stringify(obj)));
      }),
      { numRuns: 300 },
    );
  });
  it('reports malformed JSON without echoing it', () => {
    expect(() => parseJson('{"secret": 12')).toThrow(/^message.malformed-json: payload is not valid JSON$/);
  });
});

describe('plain messages', () => {
  it.each([
    ['status', Status, exampleStatus()],
    ['ack', Ack, exampleAck()],
    ['door decision', DoorDecision, exampleDoor()],
  ] as const)('a %s round trips through JSON and validation', (_n, schema, value) => {
    expect(parseMessage(schema, parseJson(canonicalJson(value)))).toEqual(value);
  });
  it('refuses unknown fields (a door decision must not grow biometrics)', () => {
    expect(() => parseMessage(DoorDecision, { ...exampleDoor(), similarity: 0.9 })).toThrow(/schema-invalid/);
  });
});

describe('credentials', () => {
  const pepper = Buffer.alloc(32, 7);
  it('hashes the same badge alike whatever its leading zeros, and differently per tenant pepper', () => {
    expect(cardHash(pepper, '0004123456')).toBe(cardHash(pepper, 4123456));
    expect(cardHash(pepper, '4123456')).not.toBe(cardHash(Buffer.alloc(32, 8), '4123456'));
    expect(cardHash(pepper, '4123456')).toMatch(/^[0-9a-f]{64}$/);
    expect(() => canonicalCardNumber('12AB')).toThrow(/decimal/);
  });
  it('verifies PINs against their scrypt hash and refuses others', () => {
    const stored = hashPin('4711');
    expect(stored).not.toContain('4711');
    expect(verifyPin('4711', stored)).toBe(true);
    expect(verifyPin('4712', stored)).toBe(false);
    expect(verifyPin('4711', 'garbage')).toBe(false);
    expect(() => hashPin('12')).toThrow(/4 to 12 digits/);
  });
});
