/**
 * Valid example messages of every kind, for tests and benchmarks of every tier. Each call
 * returns fresh ids so messages never collide across tests.
 */
import { createHash } from 'node:crypto';
import { newAccessGroupId, newMessageId, newSubjectId } from './ids.js';
import type { Ack, AlarmEvent, Command, CommandResult, DoorDecision, PunchEvent, Status } from './schemas.js';

const TENANT = 'acme';
const DEVICE = 'door-lobby-1';

/**
 * Deterministic opaque ids for tests: the same label always gives the same id, so a test can
 * write `opaqueSubject('ana')` where it once wrote 'ana', and read as well, while sending only
 * what the contract accepts ("s-" + 20 / "g-" + 12 base32 characters, protocol/ids.ts).
 */
export function opaqueSubject(label: string): string {
  return `s-${base32Of(`subject:${label}`, 20)}`;
}

export function opaqueGroup(label: string): string {
  return `g-${base32Of(`group:${label}`, 12)}`;
}

function base32Of(text: string, length: number): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz234567';
  let out = '';
  for (const b of createHash('sha256').update(text).digest().subarray(0, length)) out += alphabet[b & 31];
  return out;
}

/** The smallest valid JPEG-looking base64 (SOI marker); real photos are used where decoding matters. */
export const TINY_JPEG_BASE64 = Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0, 0x10]).toString('base64');

export function examplePunch(overrides: Partial<PunchEvent> = {}): PunchEvent {
  return {
    type: 'punch',
    eventId: newMessageId(),
    tenant: TENANT,
    device: DEVICE,
    subject: newSubjectId(),
    credential: 'card+face',
    action: 'access',
    decision: 'granted',
    reasons: [],
    scores: { faceExists: 0.9887, similarity: 0.9672, liveness: 0.93, quality: 0.81 },
    model: 'faceapi-resnet128-v1',
    door: 'lobby',
    time: { wall: Date.now(), monotonicMs: 1234.5, clockSync: 'synced' },
    photo: null,
    photoDropped: false,
    ...overrides,
  };
}

export function exampleAlarm(): AlarmEvent {
  return { type: 'alarm', eventId: newMessageId(), tenant: TENANT, device: DEVICE, alarm: 'door-held-open', door: 'lobby', at: Date.now() };
}

export function exampleCommandResult(): CommandResult {
  return {
    type: 'command-result', eventId: newMessageId(), tenant: TENANT, device: DEVICE,
    commandId: newMessageId(), outcome: 'rejected', reason: 'envelope.expired', at: Date.now(),
  };
}

export function exampleStatus(): Status {
  return {
    type: 'status', tenant: TENANT, device: DEVICE, state: 'online', at: Date.now(),
    versions: { clockface: '0.1.0', node: 'v20.20.2' }, health: { outboxDepth: 0, camera: 'ok' },
  };
}

export function exampleAck(): Ack {
  return { type: 'ack', tenant: TENANT, device: DEVICE, eventIds: [newMessageId(), newMessageId()], at: Date.now() };
}

export function exampleDoor(): DoorDecision {
  return {
    type: 'door', tenant: TENANT, device: DEVICE, door: 'lobby', subject: newSubjectId(), result: 'granted',
    reasons: [], eventId: newMessageId(), at: Date.now(),
  };
}

/** One command of every type. */
export function exampleCommands(): Command[] {
  const now = Date.now();
  const base = { tenant: TENANT, device: DEVICE, issuedAt: now, expiresAt: now + 3_600_000 };
  const vector = Buffer.from(new Float32Array(128).fill(0.1).buffer).toString('base64');
  const record = {
    subject: newSubjectId(),
    cardHashes: ['a'.repeat(64)],
    pinHash: null,
    faceConsent: true,
    accessGroups: [newAccessGroupId()], // opaque ids, as the cloud sends them (its directory keeps the names)
    templates: [{ model: 'faceapi-resnet128-v1', dims: 128, vector }],
    referencePhotos: [TINY_JPEG_BASE64],
  };
  return [
    { type: 'enroll-subject', commandId: newMessageId(), ...base, record },
    { type: 'update-subject', commandId: newMessageId(), ...base, record: { ...record, faceConsent: false, templates: [], referencePhotos: [] } },
    { type: 'remove-subject', commandId: newMessageId(), ...base, subject: record.subject },
    { type: 'erase-subject', commandId: newMessageId(), ...base, subject: record.subject },
    { type: 'config-update', commandId: newMessageId(), ...base, config: { policy: { faceCheck: 'match', access: { groups: { [record.accessGroups[0]!]: 'always' } } } } },
    { type: 'remote-unlock', commandId: newMessageId(), ...base, door: 'lobby', pulseMs: 3000 },
    { type: 'reenroll-campaign', commandId: newMessageId(), ...base, model: 'faceapi-resnet128-v2', subjects: null },
    { type: 'revocation-list', commandId: newMessageId(), ...base, serials: ['1f2e3d'], listVersion: 3 },
  ];
}

/**
 * A copy of an envelope with one bit flipped in one part, as an attacker on the path would
 * make it: in the body (the sealed ciphertext), in the signature, or in the header — there in
 * the last digit of `sentAt`, so the header still parses and still names the same event id.
 */
export function flipEnvelopeByte(envelope: Buffer, part: 'header' | 'body' | 'signature'): Buffer {
  const out = Buffer.from(envelope);
  const headerLength = out.readUInt16BE(4);
  const bodyAt = 6 + headerLength + 4;
  let at: number;
  if (part === 'signature') at = out.length - 32;
  else if (part === 'body') at = bodyAt + Math.floor((out.length - 64 - bodyAt) / 2);
  else {
    const header = out.subarray(6, 6 + headerLength).toString('latin1');
    const key = header.indexOf('"sentAt":');
    let end = key + '"sentAt":'.length;
    while (/[0-9]/.test(header[end]!)) end++;
    at = 6 + end - 1; // the last digit: '0'..'9' with its low bit flipped is still a digit
  }
  out[at]! ^= 0x01;
  return out;
}
