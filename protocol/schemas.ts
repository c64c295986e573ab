import { z } from 'zod';
import { ACCESS_GROUP_ID_REGEX, ID_REGEX, SUBJECT_ID_REGEX, UUID_REGEX } from './ids.js';
import { ProtocolError } from './errors.js';
import { LIMITS } from './limits.js';
import { CARD_HASH_PATTERN, PIN_HASH_PATTERN } from './credentials.js';

/*
 * Message schemas: the single source of truth for what crosses a tier boundary. Types are
 * derived from them (z.infer), and every receiver validates with parseMessage() below.
 * Binary fields are base64 strings with decoded-size bounds.
 */

const id = (what: string) => z.string().regex(ID_REGEX, `${what} id must be lowercase letters, digits or inner dashes`);
export const TenantId = id('tenant');
export const DeviceId = id('device');
export const SubjectId = id('subject');
/**
 * The forms the cloud makes (protocol/ids.ts), and the only subject and access group ids that
 * a terminal takes in: in the records it stores and in its policy. An id-shaped name
 * ("ana-garcia", "bob-smith-ssn-123456789") is refused there, so a terminal never stores free
 * text even when a cloud or a holder of the admin key sends it. Messages say what the form is
 * and never echo the refused value (it may be the personal data being kept out).
 *
 * What only names a subject a terminal may already hold — a punch, a door decision, a remove,
 * an erase, a re-enrolment list — takes any `SubjectId`: a record stored by an earlier release
 * under a name-shaped id must still punch (a refused punch is a lost one) and, above all, be
 * removable everywhere.
 */
export const OpaqueSubjectId = z.string().regex(SUBJECT_ID_REGEX, 'subject id must be "s-" and 20 base32 characters');
export const AccessGroupId = z.string().regex(ACCESS_GROUP_ID_REGEX, 'access group id must be "g-" and 12 base32 characters');

/**
 * A map whose keys must match `key` (a form, never free text). zod's own key check names the
 * bad key in the issue path; this one counts bad keys instead, so a refused key — possibly the
 * very name being kept out — never reaches an error, a command-result or a log.
 */
export function keyCheckedMap<V extends z.ZodType>(key: { regex: RegExp; noun: string; form: string }, value: V) {
  return z.record(z.string(), value).superRefine((map, ctx) => {
    const keys = Object.keys(map);
    const bad = keys.filter((k) => !key.regex.test(k)).length;
    if (bad > 0) {
      ctx.addIssue({
        code: 'custom',
        message: `${bad} of ${keys.length} keys ${bad === 1 ? `is not ${key.noun}` : `are not ${key.noun}s`}: keys must be ${key.form}`,
      });
    }
  });
}

/** A map keyed by access group ids (a policy's group → schedule). */
export function accessGroupMap<V extends z.ZodType>(value: V) {
  return keyCheckedMap({ regex: ACCESS_GROUP_ID_REGEX, noun: 'an access group id', form: `"g-" and 12 base32 characters (a group's name stays in the cloud)` }, value);
}

export const MessageId = z.string().regex(UUID_REGEX, 'must be a lowercase UUIDv4');
export const Score = z.number().min(0).max(1);
/** Milliseconds since the Unix epoch. */
export const EpochMs = z.number().int().nonnegative();

function base64Bytes(maxBytes: number, what: string) {
  return z
    .string()
    .max(Math.ceil(maxBytes / 3) * 4, `${what} larger than ${maxBytes} bytes`)
    .regex(/^[A-Za-z0-9+/]*={0,2}$/, `${what} must be base64`);
}

/** A JPEG as base64; the magic bytes are checked so a receiver never hands junk to a decoder. */
function jpegBase64(maxBytes: number, what: string) {
  return base64Bytes(maxBytes, what).refine((s) => s.startsWith('/9j/'), `${what} is not a JPEG`);
}

export const Credential = z.enum(['card', 'face', 'card+face', 'card+pin', 'pin']);
export const PunchAction = z.enum(['access', 'in', 'out', 'auto']);
export const Decision = z.enum(['granted', 'denied', 'flagged']);

/** Machine-readable reasons behind a decision; a screen and a report can both explain them. */
export const ReasonCode = z.enum([
  'unknown-card',
  'unknown-face',
  'no-face',
  'several-faces',
  'face-quality-low',
  'face-exists-low',
  'face-mismatch',
  'match-ambiguous',
  'liveness-failed',
  'consent-withdrawn',
  'pin-wrong',
  'pin-required',
  'not-in-access-group',
  'outside-schedule',
  'holiday',
  'anti-passback',
  'subject-suspended',
  'debounced',
  'remote-unlock',
  'request-to-exit',
  'timeout',
  'model-mismatch',
  /** Face-match asked for, but the subject has no face template on this terminal. */
  'no-template',
  'photo-dropped',
  'clock-unsynced',
  'review-required',
  /** The face path is broken (no engine, no camera frames, engine timed out): a fault, never a pass. */
  'face-unavailable',
  /** Too many wrong PINs for this card holder: the card + PIN path is locked for a while (policy.pinLockout). */
  'pin-locked',
]);

export const ClockSync = z.enum(['synced', 'unsynced', 'stepped']);

export const FaceScores = z
  .object({
    faceExists: Score.nullable(),
    similarity: Score.nullable(),
    liveness: Score.nullable(),
    quality: Score.nullable(),
  })
  .strict();

export const PunchEvent = z
  .object({
    type: z.literal('punch'),
    eventId: MessageId,
    tenant: TenantId,
    device: DeviceId,
    subject: SubjectId.nullable(),
    credential: Credential,
    action: PunchAction,
    decision: Decision,
    reasons: z.array(ReasonCode).max(16),
    scores: FaceScores,
    model: z.string().min(1).max(64).nullable(),
    door: id('door').nullable(),
    time: z
      .object({
        wall: EpochMs,
        monotonicMs: z.number().nonnegative(),
        clockSync: ClockSync,
      })
      .strict(),
    photo: jpegBase64(LIMITS.eventPhotoBytes, 'punch photo').nullable(),
    photoDropped: z.boolean(),
  })
  .strict();

/** Door hardware alarms and other facts a terminal reports besides punches. */
export const AlarmEvent = z
  .object({
    type: z.literal('alarm'),
    eventId: MessageId,
    tenant: TenantId,
    device: DeviceId,
    alarm: z.enum(['door-held-open', 'door-forced-open', 'tamper', 'outbox-full', 'camera-failed', 'reader-failed']),
    door: id('door').nullable(),
    at: EpochMs,
  })
  .strict();

/** A terminal's report on a command: applied, or rejected with the check that failed. */
export const CommandResult = z
  .object({
    type: z.literal('command-result'),
    eventId: MessageId,
    tenant: TenantId,
    device: DeviceId,
    commandId: MessageId.nullable(),
    outcome: z.enum(['applied', 'rejected', 'failed']),
    reason: z.string().max(200).nullable(),
    at: EpochMs,
  })
  .strict();

/** What a terminal publishes on its events topic (inside a sealed, signed envelope). */
export const DeviceEvent = z.discriminatedUnion('type', [PunchEvent, AlarmEvent, CommandResult]);

export const Status = z
  .object({
    type: z.literal('status'),
    tenant: TenantId,
    device: DeviceId,
    state: z.enum(['online', 'offline']),
    at: EpochMs,
    versions: z.record(z.string().max(32), z.string().max(64)),
    health: z.record(z.string().max(32), z.union([z.number(), z.string().max(128), z.boolean()])),
  })
  .strict();

/** Cloud receipts relayed by the gateway: the outbox may let these events go. */
export const Ack = z
  .object({
    type: z.literal('ack'),
    tenant: TenantId,
    device: DeviceId,
    eventIds: z.array(MessageId).min(1).max(LIMITS.ackBatch),
    at: EpochMs,
  })
  .strict();

/** Published for door-control integrations: no biometrics, no names, only the opaque subject. */
export const DoorDecision = z
  .object({
    type: z.literal('door'),
    tenant: TenantId,
    device: DeviceId,
    door: id('door'),
    subject: SubjectId.nullable(),
    result: z.enum(['granted', 'denied']),
    reasons: z.array(ReasonCode).max(16),
    eventId: MessageId,
    at: EpochMs,
  })
  .strict();

/** A face template: model id plus a little-endian float32 vector as base64. */
export const Template = z
  .object({
    model: z.string().min(1).max(64),
    dims: z.number().int().min(1).max(LIMITS.templateDims),
    vector: base64Bytes(LIMITS.templateDims * 4, 'template vector'),
  })
  .strict()
  .refine((t) => Buffer.byteLength(t.vector, 'base64') === t.dims * 4, 'template vector length does not match dims');

const SubjectRecord = z
  .object({
    subject: OpaqueSubjectId,
    /** `cardHash(tenant pepper, card number)` (credentials.ts; a release 1 hash is upgraded where it lands). The card number itself never travels. */
    cardHashes: z.array(z.string().regex(CARD_HASH_PATTERN)).max(8),
    /** `hashPin(tenant pepper, PIN)` of the fallback PIN, or null. */
    pinHash: z.string().regex(PIN_HASH_PATTERN).nullable(),
    faceConsent: z.boolean(),
    accessGroups: z.array(AccessGroupId).max(32),
    templates: z.array(Template).max(LIMITS.templatesPerSubject),
    referencePhotos: z.array(jpegBase64(LIMITS.referencePhotoBytes, 'reference photo')).max(LIMITS.referencePhotos),
  })
  .strict();

const commandBase = {
  commandId: MessageId,
  tenant: TenantId,
  device: DeviceId,
  issuedAt: EpochMs,
  expiresAt: EpochMs,
};

export const Command = z.discriminatedUnion('type', [
  z.object({ type: z.literal('enroll-subject'), ...commandBase, record: SubjectRecord }).strict(),
  z.object({ type: z.literal('update-subject'), ...commandBase, record: SubjectRecord }).strict(),
  z.object({ type: z.literal('remove-subject'), ...commandBase, subject: SubjectId }).strict(),
  /** Erase: remove the subject and purge any of their photos still waiting in the outbox. */
  z.object({ type: z.literal('erase-subject'), ...commandBase, subject: SubjectId }).strict(),
  z
    .object({
      type: z.literal('config-update'),
      ...commandBase,
      /**
       * Partial terminal config (policy, schedules, thresholds); the device validates it against
       * its own schema. The contract itself checks what could carry personal data: the policy's
       * access group keys are opaque group ids.
       */
      config: z.looseObject({
        policy: z.looseObject({ access: z.looseObject({ groups: accessGroupMap(z.unknown()).optional() }).optional() }).optional(),
      }),
    })
    .strict(),
  z
    .object({
      type: z.literal('remote-unlock'),
      ...commandBase,
      door: id('door'),
      pulseMs: z.number().int().min(100).max(60_000).nullable(),
    })
    .strict(),
  z
    .object({
      type: z.literal('reenroll-campaign'),
      ...commandBase,
      model: z.string().min(1).max(64),
      subjects: z.array(SubjectId).max(10_000).nullable(),
    })
    .strict(),
  z
    .object({
      type: z.literal('revocation-list'),
      ...commandBase,
      /** Revoked certificate serial numbers, lowercase hex. */
      serials: z.array(z.string().regex(/^[0-9a-f]{1,64}$/)).max(100_000),
      listVersion: z.number().int().nonnegative(),
    })
    .strict(),
]);

export type TenantId = z.infer<typeof TenantId>;
export type DeviceId = z.infer<typeof DeviceId>;
export type SubjectId = z.infer<typeof SubjectId>;
export type Credential = z.infer<typeof Credential>;
export type PunchAction = z.infer<typeof PunchAction>;
export type Decision = z.infer<typeof Decision>;
export type ReasonCode = z.infer<typeof ReasonCode>;
export type FaceScores = z.infer<typeof FaceScores>;
export type PunchEvent = z.infer<typeof PunchEvent>;
export type AlarmEvent = z.infer<typeof AlarmEvent>;
export type CommandResult = z.infer<typeof CommandResult>;
export type DeviceEvent = z.infer<typeof DeviceEvent>;
export type Status = z.infer<typeof Status>;
export type Ack = z.infer<typeof Ack>;
export type DoorDecision = z.infer<typeof DoorDecision>;
export type Template = z.infer<typeof Template>;
export type SubjectRecord = z.infer<typeof SubjectRecord>;
export type Command = z.infer<typeof Command>;
export type CommandType = Command['type'];

/** Commands whose content is personal (templates, photos) travel sealed to the device. */
export function commandNeedsSeal(cmd: Command): boolean {
  return cmd.type === 'enroll-subject' || cmd.type === 'update-subject';
}

/**
 * Validates a decoded value against a schema. The error names each failing field and why,
 * never the offending values (they may be photos or templates).
 */
export function parseMessage<S extends z.ZodType>(schema: S, value: unknown, what = 'message'): z.infer<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const detail = result.error.issues
    .slice(0, 5)
    .map((i) => `${i.path.length ? i.path.join('.') : '(root)'}: ${i.message}`)
    .join('; ');
  throw new ProtocolError('message.schema-invalid', `${what} failed validation: ${detail}`);
}
