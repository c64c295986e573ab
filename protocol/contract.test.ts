import fc from 'fast-check';
import { createHmac, randomBytes, scryptSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  Ack,
  CARD_SCRYPT,
  Command,
  DeviceEvent,
  DoorDecision,
  ProtocolError,
  Status,
  assertId,
  canonicalCardNumber,
  canonicalJson,
  cardHash,
  cardHashAsync,
  checkPin,
  hashPin,
  isLegacyCardHash,
  legacyCardHash,
  newSubjectId,
  parseJson,
  parseMessage,
  parseTopic,
  scryptMemoryBytes,
  topics,
  upgradeCardHash,
  verifyPin,
} from './index.js';
import { exampleAck, exampleCommands, exampleDoor, examplePunch, exampleStatus, opaqueGroup, opaqueSubject } from './fixtures.js';

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

describe('what reaches a terminal carries no free text (issue 18 item 4)', () => {
  const NAME = 'ana-garcia';
  const GROUP_NAME = 'bob-smith-ssn-123456789';
  const [enroll, , remove, , configUpdate, , reenroll] = exampleCommands() as [Extract<Command, { type: 'enroll-subject' }>, Command, Command, Command, Command, Command, Command];
  const refusal = (schema: Parameters<typeof parseMessage>[0], value: unknown): string => {
    try {
      parseMessage(schema, value);
    } catch (err) {
      return (err as Error).message;
    }
    throw new Error('accepted');
  };

  it.each([
    ['an enroll naming its subject', { ...enroll, record: { ...enroll.record, subject: NAME } }, /record\.subject: subject id must be "s-"/],
    ['an enroll naming an access group', { ...enroll, record: { ...enroll.record, accessGroups: [GROUP_NAME] } }, /record\.accessGroups\.0: access group id must be "g-"/],
    ['a policy keyed by a group name', { ...configUpdate, config: { policy: { access: { groups: { [GROUP_NAME]: 'always' } } } } }, /config\.policy\.access\.groups: 1 of 1 keys is not an access group id/],
  ])('refuses %s, naming the rule and never the value', (_what, command, why) => {
    const message = refusal(Command, command);
    expect(message).toMatch(why);
    expect(message).not.toContain(NAME);
    expect(message).not.toContain(GROUP_NAME);
  });

  it('what only names a subject a terminal may already hold takes any id: a record stored under a name by an earlier release still punches and is removable', () => {
    expect(parseMessage(DeviceEvent, examplePunch({ subject: NAME }))).toMatchObject({ subject: NAME });
    expect(parseMessage(DoorDecision, { ...exampleDoor(), subject: NAME })).toMatchObject({ subject: NAME });
    expect(parseMessage(Command, { ...remove, subject: NAME }).type).toBe('remove-subject');
    expect(parseMessage(Command, { ...reenroll, subjects: [NAME] }).type).toBe('reenroll-campaign');
    expect(parseMessage(Command, { ...enroll, record: { ...enroll.record, subject: opaqueSubject('ana'), accessGroups: [opaqueGroup('staff')] } }).type).toBe('enroll-subject');
  });

  it('test ids are deterministic and in the opaque forms', () => {
    expect(opaqueSubject('ana')).toBe(opaqueSubject('ana'));
    expect(opaqueSubject('ana')).not.toBe(opaqueSubject('bob'));
    expect(opaqueSubject('ana')).toMatch(/^s-[a-z2-7]{20}$/);
    expect(opaqueGroup('staff')).toMatch(/^g-[a-z2-7]{12}$/);
  });
});

describe('credentials', () => {
  const pepper = Buffer.alloc(32, 7);
  /** A PIN hash exactly as release 1 wrote it (unpeppered scrypt, its parameters in the string). */
  const release1Pin = (pin: string, cost = { N: 16384, r: 8, p: 1 }) => {
    const salt = randomBytes(16);
    const hash = scryptSync(pin, salt, 32, { ...cost, maxmem: 64 << 20 });
    return `scrypt$${cost.N}$${cost.r}$${cost.p}$${salt.toString('base64')}$${hash.toString('base64')}`;
  };

  it('hashes the same badge alike whatever its leading zeros, and differently per tenant pepper', () => {
    expect(cardHash(pepper, '0004123456')).toBe(cardHash(pepper, 4123456));
    expect(cardHash(pepper, '4123456')).not.toBe(cardHash(Buffer.alloc(32, 8), '4123456'));
    expect(cardHash(pepper, '4123456')).toMatch(/^c2\.[0-9a-f]{64}$/);
    expect(() => canonicalCardNumber('12AB')).toThrow(/decimal/);
  });

  it('makes the v2 card hash memory-hard on top of the keyed hash, and upgrades a release 1 hash without the card number', async () => {
    const v1 = legacyCardHash(pepper, '4123456');
    expect(v1).toBe(createHmac('sha256', pepper).update('card:4123456').digest('hex'));
    expect(isLegacyCardHash(v1)).toBe(true);
    const v2 = cardHash(pepper, '4123456');
    expect(v2).toBe(`c2.${scryptSync(Buffer.from(v1, 'hex'), 'clockface/card/v2', 32, { ...CARD_SCRYPT }).toString('hex')}`);
    expect(isLegacyCardHash(v2)).toBe(false);
    expect(await upgradeCardHash(v1)).toBe(v2);
    expect(await upgradeCardHash(v2)).toBe(v2);
    expect(await cardHashAsync(pepper, '04123456')).toBe(v2);
    expect(scryptMemoryBytes(CARD_SCRYPT)).toBe(8 << 20);
  });

  it('carries both forms of card hash in a subject record, and nothing else', () => {
    const enroll = exampleCommands()[0]!;
    const record = (h: string) => Command.safeParse({ ...enroll, record: { ...(enroll as { record: object }).record, cardHashes: [h] } }).success;
    expect(Command.safeParse(enroll).success).toBe(true);
    expect(record(cardHash(pepper, '1'))).toBe(true);
    expect(record(legacyCardHash(pepper, '1'))).toBe(true);
    expect(record('1001')).toBe(false);
    expect(record(`c3.${'a'.repeat(64)}`)).toBe(false);
  });

  it('verifies PINs against their peppered scrypt hash: a wrong PIN or another pepper fails', async () => {
    const stored = hashPin(pepper, '4711');
    expect(stored).toMatch(/^p2\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$/);
    expect(stored).not.toContain('4711');
    expect(verifyPin(pepper, '4711', stored)).toBe(true);
    expect(verifyPin(pepper, '4712', stored)).toBe(false);
    expect(verifyPin(Buffer.alloc(32, 8), '4711', stored)).toBe(false);
    expect(await checkPin(pepper, '4711', stored)).toBe('match');
    expect(await checkPin(pepper, '4712', stored)).toBe('mismatch');
    expect(await checkPin(Buffer.alloc(32, 8), '4711', stored)).toBe('mismatch');
    expect(verifyPin(pepper, '4711', 'garbage')).toBe(false);
    expect(await checkPin(pepper, '4711', 'garbage')).toBe('unrecognised');
    expect(() => hashPin(pepper, '12')).toThrow(/4 to 12 digits/);
    expect(hashPin(pepper, '4711')).not.toBe(stored); // a random salt per hash
  });

  it("accepts a release 1 PIN hash only at release 1's own cost, and says it wants upgrading", async () => {
    const old = release1Pin('2468');
    expect(await checkPin(pepper, '2468', old)).toBe('match-legacy');
    expect(await checkPin(pepper, '2469', old)).toBe('mismatch');
    expect(verifyPin(pepper, '2468', old)).toBe(true);
    // A hand-made cheap hash (what made a PIN fall in seconds) is never tested at its own low cost.
    const cheap = release1Pin('2468', { N: 1024, r: 1, p: 1 });
    expect(await checkPin(pepper, '2468', cheap)).toBe('unrecognised');
    expect(verifyPin(pepper, '2468', cheap)).toBe(false);
  });
});
