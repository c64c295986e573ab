import { createCipheriv, createDecipheriv, createHash, diffieHellman, hkdfSync, sign, verify } from 'node:crypto';
import { z } from 'zod';
import { canonicalBytes, parseJson } from './canonical.js';
import { ProtocolError } from './errors.js';
import { ID_REGEX, KEY_ID_REGEX, UUID_REGEX } from './ids.js';
import { newPrivateKey, publicKeyFromRaw, rawPublicKey, type KeyPair, type PublicKeyRef } from './keys.js';
import { LIMITS } from './limits.js';
import { assertFresh, type SequenceStore } from './replay.js';
import { parseMessage } from './schemas.js';

/*
 * The envelope: how every event, command and receipt crosses the wire.
 *
 *   "CFE" 0x01 | u16 header length | header (canonical JSON) | u32 body length | body | Ed25519 signature (64)
 *
 * The header is readable by whoever routes the message (kind, id, tenant, device, sequence,
 * times, key ids) and holds nothing personal. The body is either canonical JSON or, when the
 * header names a recipient, a seal: ephemeral X25519 public key (32) | AES-256-GCM ciphertext |
 * tag (16), with key and nonce from HKDF-SHA256 over the ECDH secret and the header as AAD,
 * so a ciphertext cannot be moved under another header. The signature covers every byte
 * before it: receivers verify it before they decrypt or parse anything in the body.
 */

export const ENVELOPE_KINDS = ['event', 'command', 'receipt'] as const;
export type EnvelopeKind = (typeof ENVELOPE_KINDS)[number];

const MAGIC = Buffer.from([0x43, 0x46, 0x45, 0x01]);
const SIGNATURE_BYTES = 64;
const EPHEMERAL_BYTES = 32;
const TAG_BYTES = 16;
const HKDF_INFO = Buffer.from('clockface/v1/seal');

export const MAX_ENVELOPE_BYTES: Record<EnvelopeKind, number> = {
  event: LIMITS.eventEnvelopeBytes,
  command: LIMITS.commandEnvelopeBytes,
  receipt: LIMITS.receiptEnvelopeBytes,
};

const KeyId = z.string().regex(KEY_ID_REGEX);
const EnvelopeHeader = z
  .object({
    v: z.literal(1),
    kind: z.enum(ENVELOPE_KINDS),
    /** The event or command id: an idempotency key routers can use without opening the body. */
    id: z.string().regex(UUID_REGEX),
    tenant: z.string().regex(ID_REGEX),
    device: z.string().regex(ID_REGEX),
    seq: z.number().int().positive().max(Number.MAX_SAFE_INTEGER),
    sentAt: z.number().int().nonnegative(),
    expiresAt: z.number().int().nonnegative().nullable(),
    signer: KeyId,
    recipient: KeyId.nullable(),
  })
  .strict()
  .refine((h) => h.kind !== 'command' || h.expiresAt !== null, { message: 'commands must carry expiresAt', path: ['expiresAt'] });
export type EnvelopeHeader = z.infer<typeof EnvelopeHeader>;

export interface SealOptions {
  kind: EnvelopeKind;
  id: string;
  tenant: string;
  device: string;
  seq: number;
  body: unknown;
  signer: KeyPair;
  /** X25519 public key of the reader; omit to send the body signed but in clear. */
  recipient?: PublicKeyRef;
  sentAt?: number;
  expiresAt?: number | null;
}

export function sealAndSign(opts: SealOptions): Buffer {
  const header = parseMessage(
    EnvelopeHeader,
    {
      v: 1,
      kind: opts.kind,
      id: opts.id,
      tenant: opts.tenant,
      device: opts.device,
      seq: opts.seq,
      sentAt: opts.sentAt ?? Date.now(),
      expiresAt: opts.expiresAt ?? null,
      signer: opts.signer.keyId,
      recipient: opts.recipient?.keyId ?? null,
    },
    'envelope header',
  );
  const headerBytes = canonicalBytes(header);
  if (headerBytes.length > LIMITS.headerBytes) throw new ProtocolError('envelope.too-large', 'header too large');
  const plaintext = canonicalBytes(opts.body);
  const body = opts.recipient ? seal(plaintext, headerBytes, opts.recipient) : plaintext;

  const total = MAGIC.length + 2 + headerBytes.length + 4 + body.length + SIGNATURE_BYTES;
  if (total > MAX_ENVELOPE_BYTES[opts.kind]) {
    throw new ProtocolError('envelope.too-large', `${opts.kind} envelope of ${total} bytes exceeds ${MAX_ENVELOPE_BYTES[opts.kind]}`);
  }
  const out = Buffer.allocUnsafe(total);
  let at = MAGIC.copy(out, 0);
  at = out.writeUInt16BE(headerBytes.length, at);
  at += headerBytes.copy(out, at);
  at = out.writeUInt32BE(body.length, at);
  at += body.copy(out, at);
  sign(null, out.subarray(0, at), opts.signer.privateKey).copy(out, at);
  return out;
}

function seal(plaintext: Buffer, aad: Buffer, recipient: PublicKeyRef): Buffer {
  // Not generateKeyPairSync: see newPrivateKey (a generated key can deadlock its export).
  const eph = newPrivateKey('x25519');
  const ephRaw = rawPublicKey(eph);
  const shared = diffieHellman({ privateKey: eph, publicKey: recipient.key });
  const { key, iv } = deriveKey(shared, ephRaw, rawPublicKey(recipient.key));
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(aad);
  const ct = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return Buffer.concat([ephRaw, ct, cipher.getAuthTag()]);
}

function deriveKey(shared: Buffer, ephRaw: Buffer, recipientRaw: Buffer): { key: Buffer; iv: Buffer } {
  const okm = Buffer.from(hkdfSync('sha256', shared, Buffer.concat([ephRaw, recipientRaw]), HKDF_INFO, 44));
  return { key: okm.subarray(0, 32), iv: okm.subarray(32, 44) };
}

export interface Framed {
  header: EnvelopeHeader;
  headerBytes: Buffer;
  body: Buffer;
  signed: Buffer;
  signature: Buffer;
}

function frame(bytes: Uint8Array): Framed {
  const buf = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const maxAny = Math.max(...Object.values(MAX_ENVELOPE_BYTES));
  if (buf.length > maxAny) throw new ProtocolError('envelope.too-large', `envelope of ${buf.length} bytes exceeds ${maxAny}`);
  if (buf.length < MAGIC.length + 2 + 4 + SIGNATURE_BYTES || !buf.subarray(0, MAGIC.length).equals(MAGIC)) {
    throw new ProtocolError('envelope.malformed', 'not a Clockface v1 envelope');
  }
  const headerLength = buf.readUInt16BE(4);
  const bodyLengthAt = 6 + headerLength;
  if (headerLength > LIMITS.headerBytes || bodyLengthAt + 4 > buf.length) {
    throw new ProtocolError('envelope.malformed', 'header length out of range');
  }
  const bodyLength = buf.readUInt32BE(bodyLengthAt);
  const bodyAt = bodyLengthAt + 4;
  if (bodyAt + bodyLength + SIGNATURE_BYTES !== buf.length) {
    throw new ProtocolError('envelope.malformed', 'body length does not match envelope size');
  }
  const headerBytes = buf.subarray(6, bodyLengthAt);
  let raw: unknown;
  try {
    raw = JSON.parse(headerBytes.toString('utf8'));
  } catch {
    throw new ProtocolError('envelope.header-invalid', 'header is not valid JSON');
  }
  const parsed = EnvelopeHeader.safeParse(raw);
  if (!parsed.success) {
    const where = parsed.error.issues[0]?.path.join('.') || '(root)';
    throw new ProtocolError('envelope.header-invalid', `header field ${where} is invalid`);
  }
  if (!canonicalBytes(parsed.data).equals(headerBytes)) {
    throw new ProtocolError('envelope.header-invalid', 'header is not in canonical form');
  }
  const header = parsed.data;
  if (buf.length > MAX_ENVELOPE_BYTES[header.kind]) {
    throw new ProtocolError('envelope.too-large', `${header.kind} envelope of ${buf.length} bytes exceeds ${MAX_ENVELOPE_BYTES[header.kind]}`);
  }
  return {
    header,
    headerBytes,
    body: buf.subarray(bodyAt, bodyAt + bodyLength),
    signed: buf.subarray(0, bodyAt + bodyLength),
    signature: buf.subarray(bodyAt + bodyLength),
  };
}

/**
 * Reads the header without verifying anything. For routers (the gateway) that need the
 * kind, id, tenant and device to queue a message they cannot and must not open. Never trust
 * it for a decision.
 */
export function peekHeader(bytes: Uint8Array): EnvelopeHeader {
  return frame(bytes).header;
}

export interface OpenOptions<S extends z.ZodType | undefined = undefined> {
  /** What the receiver expects; a mismatch is envelope.context-mismatch. */
  expect: { kind: EnvelopeKind; tenant: string; device?: string };
  /** Finds the sender's Ed25519 public key by key id (undefined: unknown signer). */
  signers: (keyId: string, header: EnvelopeHeader) => PublicKeyRef | undefined;
  /** The receiver's X25519 key pair(s); required to open sealed bodies. */
  recipientKeys?: readonly KeyPair[];
  /** Require the body to be sealed (events, personal commands). */
  requireSealed?: boolean;
  /** Replay protection; the sequence is recorded only when the whole open succeeds. */
  sequences?: SequenceStore;
  /** Accept messages sent at most this long ago (offline backlogs need days) ... */
  maxAgeMs: number;
  /** ... and at most this far in the future (clock skew). */
  maxFutureMs: number;
  now?: number;
  /** Validate the opened body against this schema. */
  schema?: S;
}

export interface Opened<T> {
  header: EnvelopeHeader;
  body: T;
}

/** The stream a sequence belongs to: kind, tenant, device and signing key. */
export function sequenceStream(header: EnvelopeHeader): string {
  return `${header.kind}:${header.tenant}:${header.device}:${header.signer}`;
}

/** An envelope whose framing, context and signature have been checked (verifyEnvelope). */
export interface VerifiedEnvelope {
  readonly header: EnvelopeHeader;
  /** @internal the framed bytes, for openVerified. */
  readonly framed: Framed;
}

/**
 * The first half of verifyAndOpen: size → framing → header → context → signer → signature.
 * A receiver that must tell "the sender signed these bytes" apart from "these bytes are new"
 * (the cloud's ingest: a known event id with bytes the device did not sign is a tamper, not a
 * duplicate) verifies first, then deduplicates, then opens with openVerified.
 */
export function verifyEnvelope(bytes: Uint8Array, opts: Pick<OpenOptions, 'expect' | 'signers'>): VerifiedEnvelope {
  const f = frame(bytes);
  const { header } = f;
  const { expect } = opts;
  if (header.kind !== expect.kind) {
    throw new ProtocolError('envelope.context-mismatch', `expected a ${expect.kind} envelope, got ${header.kind}`);
  }
  if (header.tenant !== expect.tenant) throw new ProtocolError('envelope.context-mismatch', 'envelope is for another tenant');
  if (expect.device !== undefined && header.device !== expect.device) {
    throw new ProtocolError('envelope.context-mismatch', 'envelope is for another device');
  }

  const signer = opts.signers(header.signer, header);
  if (!signer || signer.keyId !== header.signer) {
    throw new ProtocolError('envelope.unknown-signer', `no trusted key with id ${header.signer}`);
  }
  if (!verify(null, f.signed, signer.key, f.signature)) {
    throw new ProtocolError('envelope.signature-invalid', 'signature does not verify');
  }
  return { header, framed: f };
}

/**
 * The second half of verifyAndOpen, on an envelope verifyEnvelope accepted: expiry → time
 * window → replay → recipient → decryption → JSON → schema.
 */
export function openVerified<S extends z.ZodType | undefined = undefined>(
  verified: VerifiedEnvelope,
  opts: Omit<OpenOptions<S>, 'expect' | 'signers'>,
): Opened<S extends z.ZodType ? z.infer<S> : unknown> {
  const { header, framed: f } = verified;
  const now = opts.now ?? Date.now();
  if (header.expiresAt !== null && header.expiresAt <= now) {
    throw new ProtocolError('envelope.expired', `expired ${Math.round((now - header.expiresAt) / 1000)} s ago`);
  }
  if (header.sentAt < now - opts.maxAgeMs || header.sentAt > now + opts.maxFutureMs) {
    throw new ProtocolError('envelope.outside-time-window', 'sent time is outside the accepted window');
  }
  const stream = sequenceStream(header);
  if (opts.sequences) assertFresh(opts.sequences, stream, header.seq);

  let plaintext: Buffer;
  if (header.recipient !== null) {
    const mine = opts.recipientKeys?.find((k) => k.keyId === header.recipient);
    if (!mine) throw new ProtocolError('envelope.wrong-recipient', 'sealed to a key this receiver does not hold');
    plaintext = unseal(f.body, f.headerBytes, mine);
  } else {
    if (opts.requireSealed) throw new ProtocolError('envelope.context-mismatch', 'body must be sealed but is in clear');
    plaintext = f.body;
  }
  const json = parseJson(plaintext);
  const body = opts.schema ? parseMessage(opts.schema, json, `${header.kind} body`) : json;
  if (opts.sequences) opts.sequences.recordSequence(stream, header.seq);
  return { header, body: body as S extends z.ZodType ? z.infer<S> : unknown };
}

/**
 * Verifies and opens an envelope. Checks run in a fixed order, each with its own error code:
 * size → framing → header → context → signer → signature → expiry → time window → replay →
 * recipient → decryption → JSON → schema.
 */
export function verifyAndOpen<S extends z.ZodType | undefined = undefined>(
  bytes: Uint8Array,
  opts: OpenOptions<S>,
): Opened<S extends z.ZodType ? z.infer<S> : unknown> {
  return openVerified(verifyEnvelope(bytes, opts), opts);
}

/**
 * A SHA-256 of an envelope's bytes, hex. Routers that cannot verify a signature (the gateway)
 * compare copies by it: two different byte strings under one event id mean one of them is not
 * what the device sent, or the device re-sealed it (a photo dropped under outbox pressure).
 */
export function envelopeDigest(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/**
 * The key under which a router queues a second, different copy of an event whose id it already
 * queues: the event id, a dot and the first 16 hex digits of the copy's digest. It goes to the
 * cloud as the ingest entry's id, so the cloud, not the router, judges the copy (the device's
 * own re-seal is a duplicate, anything else a tamper) and answers under the same key.
 */
export function copyKey(eventId: string, bytes: Uint8Array): string {
  return `${eventId}.${envelopeDigest(bytes).slice(0, 16)}`;
}

/** Whether `key` names this envelope: its header id, or copyKey of its id and bytes. */
export function keyNamesEnvelope(key: string, eventId: string, bytes: Uint8Array): boolean {
  return key === eventId || (key.length === eventId.length + 17 && key === copyKey(eventId, bytes));
}

function unseal(body: Buffer, aad: Buffer, recipient: KeyPair): Buffer {
  if (body.length < EPHEMERAL_BYTES + TAG_BYTES) throw new ProtocolError('envelope.decrypt-failed', 'sealed body too short');
  const ephRaw = body.subarray(0, EPHEMERAL_BYTES);
  const ct = body.subarray(EPHEMERAL_BYTES, body.length - TAG_BYTES);
  const tag = body.subarray(body.length - TAG_BYTES);
  try {
    const ephKey = publicKeyFromRaw('x25519', ephRaw);
    const shared = diffieHellman({ privateKey: recipient.privateKey, publicKey: ephKey });
    const { key, iv } = deriveKey(shared, ephRaw, recipient.publicRaw);
    const decipher = createDecipheriv('aes-256-gcm', key, iv);
    decipher.setAAD(aad);
    decipher.setAuthTag(tag);
    return Buffer.concat([decipher.update(ct), decipher.final()]);
  } catch {
    throw new ProtocolError('envelope.decrypt-failed', 'sealed body does not authenticate');
  }
}
