import {
  Ack,
  DeviceEvent,
  LIMITS,
  ProtocolError,
  envelopeDigest,
  keyNamesEnvelope,
  newMessageId,
  openVerified,
  parseMessage,
  peekHeader,
  publicKeyRef,
  sealAndSign,
  verifyEnvelope,
  type EnvelopeHeader,
  type VerifiedEnvelope,
  type DeviceEvent as DeviceEventT,
  type PublicKeyRef,
  type PunchEvent,
} from '../protocol/index.js';
import type { Alarms } from './alarms.js';
import type { AuditLog } from './audit.js';
import type { Clock } from './clock.js';
import { DAY_MS } from './clock.js';
import type { Db } from './db.js';
import type { Outbox } from './outbox.js';
import { nextOutSequence, SqliteSequenceStore, StagedSequences } from './sequences.js';
import type { TenantKeys } from './tenant-keys.js';
import { contractEnded } from './settings.js';
import { PhotoError, stripMetadata, type PhotoVault } from './vault.js';

/**
 * Ingest of device events relayed by a gateway (POST /v1/gateway/ingest). Per event:
 * cross-tenant check → revoked device → header matches the entry → the exact bytes already
 * stored under that id (events.digest) are a duplicate → verify the signature → duplicate
 * check by header id → sequence, open the seal with the tenant's cloud key, validate → store. What fails is recorded by code and reason only, never its payload. One
 * signed receipt per device per batch lets outboxes release.
 *
 * The signature is verified *before* the duplicate check: an id the cloud already holds
 * proves nothing about the bytes that carry it. A copy the device signed (a retry, or the
 * photo-less re-seal its outbox makes under pressure) is a duplicate and acknowledged again;
 * a copy whose bytes the device did not sign is `event.tampered` — rejected, recorded,
 * reported through onRejected with the device, raised as an admin alarm (cloud/alarms.ts),
 * and the stored punch is left as it was. An unknown id whose signature fails is
 * `envelope.signature-invalid` and raised the same way (`event.forged`). The sequence check
 * comes after the duplicate check, so a retried event is acknowledged, not refused as a replay.
 */
export interface IngestItem {
  id: string;
  tenant: string;
  device: string;
  envelope: string;
}

export type IngestStatus = 'stored' | 'duplicate' | 'rejected';
export interface IngestResult {
  id: string;
  status: IngestStatus;
  reason?: string;
}
/** A refused event as the process logs it: who sent it and why, never its bytes. */
export interface Rejection {
  tenant: string;
  gateway: string;
  device: string | null;
  eventId: string | null;
  code: string;
  reason: string;
}

export interface Receipt {
  tenant: string;
  device: string;
  envelope: string;
}

export const EVENT_MAX_AGE_MS = 35 * DAY_MS;
export const EVENT_MAX_FUTURE_MS = 5 * 60_000;

interface Opened {
  item: IngestItem;
  /** SHA-256 of the envelope, kept with the event so a later copy is compared byte for byte. */
  digest?: string;
  event: DeviceEventT;
  stream: [string, number];
  photo: Buffer | null;
}

export class Ingest {
  private readonly sequences: SqliteSequenceStore;
  /** Called with each batch's results (metrics). */
  onResults: (results: IngestResult[]) => void = () => {};
  /** Called with each refused event (logs). */
  onRejected: (rejection: Rejection) => void = () => {};
  private readonly storedDigest;
  private readonly deviceKey;
  private readonly deviceSerial;
  private readonly serialRevoked;

  constructor(
    private readonly db: Db,
    private readonly keys: (tenant: string) => TenantKeys | undefined,
    private readonly vault: PhotoVault,
    private readonly outbox: Outbox,
    private readonly audit: AuditLog,
    private readonly clock: Clock,
    private readonly alarms: Alarms,
  ) {
    this.sequences = new SqliteSequenceStore(db);
    // undefined: an id never stored; null: stored before digests were kept; else the stored bytes' SHA-256.
    this.storedDigest = db.prepare('SELECT digest FROM events WHERE tenant = ? AND id = ?').pluck();
    this.deviceKey = db.prepare('SELECT signing_public AS signing FROM devices WHERE tenant = ? AND device = ?').pluck();
    this.deviceSerial = db.prepare('SELECT cert_serial FROM devices WHERE tenant = ? AND device = ?').pluck();
    this.serialRevoked = db.prepare('SELECT 1 FROM revocations WHERE tenant = ? AND serial = ?').pluck();
  }

  /**
   * Whether the device's registered certificate serial is on the tenant's revocation list.
   * Both sides are stored normalized (registry.ts, db.ts): serials compare as numbers, so the
   * 00 byte DER adds to a serial whose top bit is set does not hide a revocation.
   */
  private isRevoked(tenant: string, device: string): boolean {
    const serial = this.deviceSerial.get(tenant, device) as string | undefined;
    return serial !== undefined && this.serialRevoked.get(tenant, serial) !== undefined;
  }

  async ingest(gateway: { tenant: string; gateway: string }, items: IngestItem[]): Promise<{ results: IngestResult[]; receipts: Receipt[] }> {
    const tenant = gateway.tenant;
    const keys = this.keys(tenant);
    const now = this.clock.now();
    const ended = contractEnded(this.db, tenant, now);
    const revokedDevices = new Map<string, boolean>();
    const revoked = (device: string) => {
      let r = revokedDevices.get(device);
      if (r === undefined) revokedDevices.set(device, (r = typeof device === 'string' && this.isRevoked(tenant, device)));
      return r;
    };
    const results: IngestResult[] = [];
    // Results are reported in the batch's order whichever phase settles each event.
    const position = new Map(items.map((item, i) => [item, i] as const));
    const settled: Array<[number, IngestResult]> = [];
    const settle = (item: IngestItem, r: IngestResult) => settled.push([position.get(item)!, r]);
    const acked = new Map<string, string[]>();
    const ack = (device: string, id: string) => {
      const list = acked.get(device) ?? [];
      if (!list.includes(id)) list.push(id);
      acked.set(device, list);
    };
    /** `headerId`: the id in the envelope's header, once read (the entry's id may be a copy key). */
    const reject = (item: IngestItem, code: string, reason: string, receipt: boolean, headerId?: string) => {
      const device = safeId(item.device);
      const eventId = safeUuid(headerId ?? item.id);
      this.db
        .prepare('INSERT INTO rejections (tenant, gateway, device, event_id, code, reason, at) VALUES (?, ?, ?, ?, ?, ?, ?)')
        .run(tenant, gateway.gateway, device, eventId, code, reason.slice(0, 200), now);
      this.onRejected({ tenant, gateway: gateway.gateway, device, eventId, code, reason: reason.slice(0, 200) });
      const alarm = ALARMING_REJECTIONS[code];
      if (alarm) this.alarms.raise(now, `ingest:${gateway.gateway}`, { tenant, kind: alarm, device, objectId: eventId, detail: { code, gateway: gateway.gateway } });
      settle(item, { id: String(item.id).slice(0, 64), status: 'rejected', reason: `${code}: ${reason}`.slice(0, 240) });
      if (receipt && eventId && keys && this.deviceKey.get(tenant, item.device) !== undefined) ack(item.device, eventId);
    };

    // Phase 1, in order: checks and signature verification (synchronous, cheap).
    /** Ids already taken in this batch, with their envelope's digest. */
    const inBatch = new Map<string, string>();
    const accepted: Array<{ item: IngestItem; eventId: string; stream: [string, number]; opened: Promise<Opened> }> = [];
    for (const item of items) {
      // Nothing crosses tenants: a gateway speaks only for the tenant its token belongs to.
      if (item.tenant !== tenant) {
        reject(item, 'tenant.mismatch', 'event names another tenant than the gateway', false);
        continue;
      }
      if (!keys) {
        reject(item, 'tenant.unconfigured', 'this cloud holds no keys for the tenant', false);
        continue;
      }
      // A terminal whose certificate was revoked (stolen, decommissioned) speaks for no one any
      // more, even with a valid signature; no receipt, so nothing it holds is released as handled.
      if (revoked(item.device)) {
        reject(item, 'device.revoked', 'the device certificate is revoked', false);
        continue;
      }
      let header: EnvelopeHeader | undefined;
      try {
        const bytes = Buffer.from(item.envelope, 'base64');
        header = peekHeader(bytes);
        // The entry's id is the header's, or the key a gateway gives a second, different copy of
        // an event it still queues (protocol copyKey): judged here, answered under that key.
        if (!keyNamesEnvelope(item.id, header.id, bytes) || header.tenant !== item.tenant || header.device !== item.device) {
          throw new ProtocolError('envelope.context-mismatch', 'envelope header does not match the batch entry');
        }
        const digest = envelopeDigest(bytes);
        const held = inBatch.get(header.id) ?? (this.storedDigest.get(tenant, header.id) as string | null | undefined);
        const known = held !== undefined;
        if (held === digest) {
          // Exactly the bytes that were verified when the event was taken: a retry. (It also
          // keeps a retry acknowledged after its device's signing key was replaced.)
          settle(item, { id: item.id, status: 'duplicate' });
          ack(item.device, header.id);
          continue;
        }
        let verified: VerifiedEnvelope;
        try {
          verified = this.verify(tenant, item.device, bytes);
        } catch (err) {
          if (known && err instanceof ProtocolError && SIGNATURE_FAILURES.has(err.code)) {
            reject(item, 'event.tampered', `an event with this id is already held; these bytes are not the device's (${err.code})`, false, header.id);
            continue;
          }
          throw err;
        }
        if (known) {
          settle(item, { id: item.id, status: 'duplicate' });
          ack(item.device, header.id);
          continue;
        }
        inBatch.set(header.id, digest);
        const opened = { ...this.open(tenant, keys, item, verified, now), digest };
        if (ended && opened.event.type !== 'command-result') {
          // The contract ended: the tenant's data is being deleted, nothing new is stored (its
          // photo never reaches the vault). Verified, so the receipt lets the terminal release
          // it. Command results still count: they show terminals applying the erasures.
          reject(item, 'tenant.contract-ended', 'the tenant’s contract has ended; events are no longer stored', true, header.id);
          continue;
        }
        // Phase 2 starts here: photo metadata removal runs concurrently (a lossless segment walk; the
        // rare photo that needs re-encoding goes to libvips, which uses every core).
        const pending = this.withPhoto(opened);
        pending.catch(() => {}); // awaited in phase 3; this only keeps an early failure from counting as unhandled
        accepted.push({ item, eventId: header.id, stream: opened.stream, opened: pending });
      } catch (err) {
        if (!(err instanceof ProtocolError)) throw err;
        reject(item, err.code, err.message, isFinalForDevice(err), header?.id);
      }
    }
    // Phase 3, in order: store each event in its own transaction.
    for (const { item, eventId, stream, opened } of accepted) {
      let o: Opened;
      try {
        o = await opened;
      } catch (err) {
        if (!(err instanceof PhotoError)) throw err;
        // The device signed it, so it is final: record, refuse, and let the outbox release it. Its
        // sequence is spent here, in order, so later events of the batch are not taken for replays.
        this.sequences.recordSequence(stream[0], stream[1]);
        reject(item, 'photo.invalid', err.message, true, eventId);
        continue;
      }
      try {
        const status = this.store(tenant, o, now);
        settle(item, { id: item.id, status });
        ack(item.device, eventId);
        // A door forced or held open, a tampered housing: the terminal's own alarms reach the same list.
        if (status === 'stored' && o.event.type === 'alarm') {
          this.alarms.raise(now, `device:${o.event.device}`, { tenant, kind: `device.${o.event.alarm}`, device: o.event.device, objectId: eventId, detail: { door: o.event.door, at: o.event.at } });
        }
      } catch (err) {
        // Lost a race with another batch carrying a later sequence of the same device.
        if (!(err instanceof ProtocolError)) throw err;
        reject(item, err.code, err.message, false, eventId);
      }
    }

    settled.sort((a, b) => a[0] - b[0]).forEach(([, r]) => results.push(r));
    const receipts: Receipt[] = [];
    if (keys) {
      for (const [device, ids] of acked) {
        for (let i = 0; i < ids.length; i += LIMITS.ackBatch) {
          receipts.push({ tenant, device, envelope: this.receipt(keys, device, ids.slice(i, i + LIMITS.ackBatch), now).toString('base64') });
        }
      }
    }
    this.onResults(results);
    return { results, receipts };
  }

  /** Framing, context, signer and signature: whether the device signed exactly these bytes. */
  private verify(tenant: string, device: string, bytes: Buffer): VerifiedEnvelope {
    const signing = this.deviceKey.get(tenant, device) as string | undefined;
    const signer: PublicKeyRef | undefined = signing ? publicKeyRef('ed25519', signing) : undefined;
    return verifyEnvelope(bytes, {
      expect: { kind: 'event', tenant, device },
      signers: (keyId) => (signer && signer.keyId === keyId ? signer : undefined),
    });
  }

  private open(tenant: string, keys: TenantKeys, item: IngestItem, verified: VerifiedEnvelope, now: number): Opened {
    const staged = new StagedSequences(this.sequences);
    const { header, body } = openVerified(verified, {
      recipientKeys: [keys.cloudSealing],
      requireSealed: true,
      sequences: staged,
      // No time window for events: a terminal whose clock is wrong (a Pi without RTC booting in
      // 1970, a clock set an hour ahead) must not lose its punches. Replays are refused by the
      // durable per-device sequence and the event-id dedupe; a skewed clock flags the punch
      // for review instead (clockTrouble).
      maxAgeMs: Number.MAX_SAFE_INTEGER,
      maxFutureMs: Number.MAX_SAFE_INTEGER,
      now,
      schema: DeviceEvent,
    });
    if (body.eventId !== header.id || body.tenant !== header.tenant || body.device !== header.device) {
      throw new ProtocolError('message.schema-invalid', 'event body does not match its envelope header');
    }
    const stream = staged.take();
    if (!stream) throw new ProtocolError('envelope.replayed', 'no sequence recorded');
    return { item, event: body, stream, photo: null };
  }

  /** Strips the punch photo of all metadata (cloud/vault.ts stripMetadata); a photo that does not decode is final for the device. */
  private async withPhoto(o: Opened): Promise<Opened> {
    if (o.event.type !== 'punch' || !o.event.photo) return o;
    return { ...o, photo: await stripMetadata(Buffer.from(o.event.photo, 'base64')) };
  }

  private store(tenant: string, o: Opened, now: number): IngestStatus {
    const e = o.event;
    const photo = o.photo ? this.vault.prepare(tenant, o.photo, now) : null;
    try {
      return this.db.transaction((): IngestStatus => {
        const inserted = this.db
          .prepare('INSERT OR IGNORE INTO events (tenant, id, device, type, received_at, digest) VALUES (?, ?, ?, ?, ?, ?)')
          .run(tenant, e.eventId, e.device, e.type, now, o.digest ?? null).changes;
        if (!inserted) {
          photo?.abort();
          return 'duplicate';
        }
        const last = this.sequences.lastSequence(o.stream[0]);
        if (last !== undefined && o.stream[1] <= last) throw new ProtocolError('envelope.replayed', `sequence ${o.stream[1]} was already accepted`);
        this.sequences.recordSequence(o.stream[0], o.stream[1]);
        if (e.type === 'punch') {
          const recheck = photo ? 'pending' : 'none';
          photo?.commit('punch', e.subject, now);
          this.db
            .prepare(
              `INSERT INTO punches (tenant, event_id, device, subject, credential, action, decision, reasons, scores, model, door,
                 wall_time, clock_sync, received_at, photo_id, photo_dropped, recheck_state, recheck_next_at, review_state, review_reasons)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
            )
            .run(
              tenant, e.eventId, e.device, e.subject, e.credential, e.action, e.decision, JSON.stringify(e.reasons),
              JSON.stringify(e.scores), e.model, e.door, e.time.wall, e.time.clockSync, now, photo?.id ?? null,
              e.photoDropped ? 1 : 0, recheck, photo ? now : null, e.decision === 'flagged' || clockTrouble(e, now) ? 'open' : 'none',
              JSON.stringify(clockTrouble(e, now) ? ['clock-unsynced'] : []),
            );
        } else if (e.type === 'alarm') {
          this.db
            .prepare('INSERT INTO alarms (tenant, event_id, device, alarm, door, at, received_at) VALUES (?, ?, ?, ?, ?, ?, ?)')
            .run(tenant, e.eventId, e.device, e.alarm, e.door, e.at, now);
        } else if (e.commandId) {
          this.outbox.recordResult(tenant, e.device, e.commandId, e.outcome, e.reason, e.at);
        }
        return 'stored';
      })();
    } catch (err) {
      photo?.abort();
      throw err;
    }
  }

  private receipt(keys: TenantKeys, device: string, eventIds: string[], now: number): Buffer {
    const body = parseMessage(Ack, { type: 'ack', tenant: keys.tenant, device, eventIds, at: now }, 'receipt');
    return sealAndSign({
      kind: 'receipt',
      id: newMessageId(),
      tenant: keys.tenant,
      device,
      seq: nextOutSequence(this.db, `receipt:${keys.tenant}:${device}:${keys.adminSigning.keyId}`),
      body,
      signer: keys.adminSigning,
      sentAt: now,
    });
  }
}

/**
 * A punch whose time cannot be trusted: the terminal said its clock was unsynced or had just
 * stepped, or the punch claims a time in the future or older than any outbox keeps events.
 * (A punch from hours ago is normal: it waited out an outage.)
 */
function clockTrouble(e: PunchEvent, now: number): boolean {
  return e.time.clockSync !== 'synced' || e.time.wall > now + EVENT_MAX_FUTURE_MS || e.time.wall < now - EVENT_MAX_AGE_MS;
}

/**
 * Failures after the signature verified are the device's own (a schema error, a photo that
 * does not decode, a too-old event): retrying cannot help, so the receipt releases them.
 * Forgeries, replays and unknown signers get no receipt.
 */
function isFinalForDevice(err: ProtocolError): boolean {
  return ['envelope.outside-time-window', 'envelope.decrypt-failed', 'envelope.wrong-recipient', 'message.malformed-json', 'message.schema-invalid'].includes(err.code);
}

/** Failures that mean the device's key did not sign these bytes. */
const SIGNATURE_FAILURES = new Set<string>(['envelope.signature-invalid', 'envelope.unknown-signer']);

/**
 * Rejections an admin must see (cloud/alarms.ts), by the alarm kind they raise: bytes under a
 * device's name that its key did not sign. Everything else is a device's own mistake or a
 * retry, recorded in `rejections` only.
 */
const ALARMING_REJECTIONS: Record<string, string> = {
  'event.tampered': 'event.tampered',
  'envelope.signature-invalid': 'event.forged',
};

const safeId = (v: unknown) => (typeof v === 'string' && /^[a-z0-9-]{1,63}$/.test(v) ? v : null);
const safeUuid = (v: unknown) => (typeof v === 'string' && /^[0-9a-f-]{36}$/.test(v) ? v : null);
