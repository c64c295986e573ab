import { randomBytes, randomUUID } from 'node:crypto';
import { ProtocolError } from './errors.js';

/**
 * Tenant, device and subject ids: lowercase letters, digits and inner dashes, 1..63 chars.
 * They appear in MQTT topics and file names, so the rule keeps out '+', '#', '/', NUL and
 * anything else that could widen a subscription or escape a folder.
 */
const ID_PATTERN = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
export const ID_MAX_LENGTH = 63;

export type IdKind = 'tenant' | 'device' | 'subject' | 'door' | 'gateway';

export function isValidId(value: unknown): value is string {
  return typeof value === 'string' && ID_PATTERN.test(value);
}

export function assertId(kind: IdKind, value: unknown): string {
  if (!isValidId(value)) {
    const shown = typeof value === 'string' ? JSON.stringify(value.slice(0, 80)) : typeof value;
    throw new ProtocolError(
      'id.invalid',
      `${kind} id ${shown} must be 1-${ID_MAX_LENGTH} lowercase letters, digits or inner dashes`,
    );
  }
  return value;
}

export const ID_REGEX = ID_PATTERN;

/** Event and command ids are random UUIDv4: unique, unguessable, and free of personal data. */
export const UUID_REGEX = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/** A key id (protocol/keys.ts keyIdOf): 16 lowercase hex digits of the public key's hash. */
export const KEY_ID_REGEX = /^[0-9a-f]{16}$/;

export function newMessageId(): string {
  return randomUUID();
}

const BASE32 = 'abcdefghijklmnopqrstuvwxyz234567';

function randomBase32(length: number): string {
  let out = '';
  for (const b of randomBytes(length)) out += BASE32[b & 31];
  return out;
}

/**
 * Subject ids are opaque and random ("s-" + 20 base32 chars): nothing about the person. Only
 * the cloud makes them; a client-chosen subject id is accepted only in exactly this form, so a
 * name, an employee number or an email cannot travel to terminals as an id.
 */
export const SUBJECT_ID_REGEX = /^s-[a-z2-7]{20}$/;

export function newSubjectId(): string {
  return `s-${randomBase32(20)}`;
}

/**
 * Access group ids are opaque too ("g-" + 12 base32 chars): what terminals hold in subject
 * records and in their policy's group → schedule map. The group's human name ("night shift",
 * "contractors") stays in the cloud's directory (cloud/access-groups.ts).
 */
export const ACCESS_GROUP_ID_REGEX = /^g-[a-z2-7]{12}$/;

export function newAccessGroupId(): string {
  return `g-${randomBase32(12)}`;
}
