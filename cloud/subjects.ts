import { randomBytes } from 'node:crypto';
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tar from 'tar';
import { newSubjectId, SUBJECT_ID_REGEX, Template, upgradeCardHash } from '../protocol/index.js';
import { checkpointWal } from './db.js';
import type { CloudService } from './service.js';
import { HttpError } from './http-errors.js';
import { listPunches } from './punches.js';
import { contractEnded, getSettings } from './settings.js';

/**
 * Employees as the cloud knows them (an opaque subject id, card hashes, PIN hash, access
 * groups, consent, reference photos in the vault, templates) and the data-subject rights:
 * export, erase, rectify, consent. Every change reaches the terminals as commands.
 */
export interface SubjectInput {
  /** Only in the opaque form the cloud makes (protocol SUBJECT_ID_REGEX); usually left out. */
  subject?: string;
  cardHashes: string[];
  pinHash: string | null;
  /** Access group names or ids (cloud/access-groups.ts); terminals receive only the ids. */
  accessGroups: string[];
  /** Face consent given at enrollment (policy version), or null for badge + PIN only. */
  consent: { policyVersion: string } | null;
  referencePhotos: string[];
  templates: Template[];
}

/**
 * A consent policy version is a bounded code ("v3", "2026-01", "1.2"), never free text: it is
 * a key into the tenant's consent texts, not a place for a name or an email.
 */
export const POLICY_VERSION_PATTERN = '^v?[0-9]{1,6}(?:[.-][0-9]{1,6}){0,3}$';
const POLICY_VERSION = new RegExp(POLICY_VERSION_PATTERN);

interface SubjectRow {
  subject: string;
  card_hashes: string;
  pin_hash: string | null;
  access_groups: string;
  face_consent: number;
  left_at: number | null;
  created_at: number;
  updated_at: number;
}

/**
 * Templates are checked against the wire contract before anything is stored: the route schema
 * cannot see that a vector's length matches its dims, and a template the terminals' command
 * schema would refuse must be a 400 here, not a failure while queueing commands.
 */
function checkTemplates(templates: unknown[]): void {
  templates.forEach((t, i) => {
    const r = Template.safeParse(t);
    if (!r.success) throw new HttpError(400, `template ${i}: ${r.error.issues.map((x) => x.message).join('; ')}`);
  });
}

export class Subjects {
  constructor(private readonly s: CloudService) {}

  private row(tenant: string, subject: string): SubjectRow {
    const r = this.s.db.prepare('SELECT * FROM subjects WHERE tenant = ? AND subject = ?').get(tenant, subject) as SubjectRow | undefined;
    if (!r) throw new HttpError(404, 'no such subject');
    return r;
  }

  /** After contract end nothing personal is taken in: the sweeper is busy deleting it all. */
  private refuseIfEnded(tenant: string): void {
    if (contractEnded(this.s.db, tenant, this.s.clock.now())) throw new HttpError(409, 'the tenant’s contract has ended; no new subject data is stored');
  }

  async create(tenant: string, input: SubjectInput, actor: string): Promise<{ subject: string; commands: number }> {
    this.refuseIfEnded(tenant);
    // The route schema says the same; checked here too for every caller of the service.
    if (input.subject !== undefined && !SUBJECT_ID_REGEX.test(input.subject)) throw new HttpError(400, 'a subject id is made by the cloud: leave it out, or give one in its opaque form ("s-" and 20 base32 characters)');
    if (input.consent && !POLICY_VERSION.test(input.consent.policyVersion)) throw new HttpError(400, 'a consent policy version is a version code such as "v3" or "2026-01"');
    const subject = input.subject ?? newSubjectId();
    if (!input.consent && (input.referencePhotos.length || input.templates.length)) {
      throw new HttpError(400, 'reference photos and templates need recorded face consent');
    }
    checkTemplates(input.templates);
    // A release 1 client's bare HMAC card hashes are kept as v2 (memory-hard) from the start.
    const cardHashes = await Promise.all(input.cardHashes.map(upgradeCardHash));
    const now = this.s.clock.now();
    const photos = await this.stagePhotos(tenant, input.referencePhotos);
    try {
      this.s.db.transaction(() => {
        const groups = this.s.accessGroups.resolve(tenant, input.accessGroups, actor, now);
        const r = this.s.db
          .prepare(
            `INSERT OR IGNORE INTO subjects (tenant, subject, card_hashes, pin_hash, access_groups, face_consent, created_at, updated_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
          )
          .run(tenant, subject, JSON.stringify(cardHashes), input.pinHash, JSON.stringify(groups), input.consent ? 1 : 0, now, now);
        if (!r.changes) throw new HttpError(409, 'subject already exists');
        photos.forEach((p) => p.commit('reference', subject, now));
        this.insertTemplates(tenant, subject, input.templates, now);
        if (input.consent) this.recordConsent(tenant, subject, 'granted', input.consent.policyVersion, actor, now);
        this.s.audit.record(now, { tenant, actor, action: 'subject.enrolled', objectKind: 'subject', objectId: subject, detail: { referencePhotos: photos.length, templates: input.templates.length } });
      })();
    } catch (err) {
      photos.forEach((p) => p.abort());
      throw err;
    }
    const commands = this.s.outbox.enqueueAll(tenant, { type: 'enroll-subject', record: this.record(tenant, subject) }, subject).length;
    return { subject, commands };
  }

  /** The record terminals receive (sealed to each): hashes, groups, consent, templates, reference photos. */
  record(tenant: string, subject: string) {
    const r = this.row(tenant, subject);
    const consent = r.face_consent === 1;
    return {
      subject,
      cardHashes: JSON.parse(r.card_hashes) as string[],
      pinHash: r.pin_hash,
      faceConsent: consent,
      accessGroups: JSON.parse(r.access_groups) as string[],
      templates: consent ? this.templates(tenant, subject) : [],
      referencePhotos: consent ? this.referencePhotoIds(tenant, subject).map((id) => this.s.vault.get(tenant, id).toString('base64')) : [],
    };
  }

  private templates(tenant: string, subject: string): Template[] {
    return (this.s.db.prepare('SELECT model, dims, vector FROM templates WHERE tenant = ? AND subject = ? ORDER BY created_at, id').all(tenant, subject) as Array<{ model: string; dims: number; vector: Buffer }>).map(
      (t) => ({ model: t.model, dims: t.dims, vector: t.vector.toString('base64') }),
    );
  }

  referencePhotoIds(tenant: string, subject: string): string[] {
    return this.s.db.prepare("SELECT id FROM photos WHERE tenant = ? AND subject = ? AND kind = 'reference' ORDER BY created_at, id").pluck().all(tenant, subject) as string[];
  }

  private insertTemplates(tenant: string, subject: string, templates: Template[], now: number): void {
    const ins = this.s.db.prepare('INSERT INTO templates (id, tenant, subject, model, dims, vector, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)');
    for (const t of templates) ins.run(randomBytes(12).toString('hex'), tenant, subject, t.model, t.dims, Buffer.from(t.vector, 'base64'), now);
  }

  private async stagePhotos(tenant: string, photos: string[]) {
    const { stripMetadata, PhotoError } = await import('./vault.js');
    const staged: Array<ReturnType<CloudService['vault']['prepare']>> = [];
    try {
      for (const b64 of photos) staged.push(this.s.vault.prepare(tenant, await stripMetadata(Buffer.from(b64, 'base64')), this.s.clock.now()));
    } catch (err) {
      staged.forEach((p) => p.abort());
      if (err instanceof PhotoError) throw new HttpError(400, `reference photo: ${err.message}`);
      throw err;
    }
    return staged;
  }

  private recordConsent(tenant: string, subject: string, state: 'granted' | 'withdrawn', policyVersion: string, actor: string, at: number): void {
    this.s.db.prepare('INSERT INTO consents (tenant, subject, state, actor, policy_version, at) VALUES (?, ?, ?, ?, ?, ?)').run(tenant, subject, state, actor, policyVersion, at);
  }

  /** Replaces the reference photo(s) (and templates made from the old ones) and updates every terminal. */
  async rectify(tenant: string, subject: string, photos: string[], templates: Template[], actor: string): Promise<{ commands: number }> {
    const r = this.row(tenant, subject);
    this.refuseIfEnded(tenant);
    if (r.face_consent !== 1) throw new HttpError(409, 'subject has no face consent; record consent first');
    checkTemplates(templates);
    const now = this.s.clock.now();
    const staged = await this.stagePhotos(tenant, photos);
    const old = this.referencePhotoIds(tenant, subject);
    try {
      this.s.db.transaction(() => {
        staged.forEach((p) => p.commit('reference', subject, now));
        this.s.db.prepare('DELETE FROM templates WHERE tenant = ? AND subject = ?').run(tenant, subject);
        this.insertTemplates(tenant, subject, templates, now);
        this.s.db.prepare('UPDATE subjects SET updated_at = ? WHERE tenant = ? AND subject = ?').run(now, tenant, subject);
      })();
    } catch (err) {
      staged.forEach((p) => p.abort());
      throw err;
    }
    for (const id of old) {
      this.s.vault.delete(tenant, id);
      this.s.audit.record(now, { tenant, actor, action: 'photo.deleted', objectKind: 'photo', objectId: id, detail: { reason: 'rectified' } });
    }
    this.s.outbox.cancelForSubject(tenant, subject);
    const commands = this.s.outbox.enqueueAll(tenant, { type: 'update-subject', record: this.record(tenant, subject) }, subject).length;
    this.s.audit.record(now, { tenant, actor, action: 'subject.rectified', objectKind: 'subject', objectId: subject, detail: { referencePhotos: staged.length } });
    checkpointWal(this.s.db);
    return { commands };
  }

  /** Records consent granted or withdrawn. Withdrawal removes face data here and on every terminal (badge + PIN remain). */
  consent(tenant: string, subject: string, state: 'granted' | 'withdrawn', policyVersion: string, actor: string): { commands: number } {
    this.row(tenant, subject);
    if (!POLICY_VERSION.test(policyVersion)) throw new HttpError(400, 'a consent policy version is a version code such as "v3" or "2026-01"');
    const now = this.s.clock.now();
    let removed: string[] = [];
    this.s.db.transaction(() => {
      this.recordConsent(tenant, subject, state, policyVersion, actor, now);
      this.s.db.prepare('UPDATE subjects SET face_consent = ?, updated_at = ? WHERE tenant = ? AND subject = ?').run(state === 'granted' ? 1 : 0, now, tenant, subject);
      if (state === 'withdrawn') {
        removed = this.referencePhotoIds(tenant, subject);
        this.s.db.prepare('DELETE FROM templates WHERE tenant = ? AND subject = ?').run(tenant, subject);
      }
      this.s.audit.record(now, { tenant, actor, action: `consent.${state}`, objectKind: 'subject', objectId: subject, detail: { policyVersion } });
    })();
    for (const id of removed) {
      this.s.vault.delete(tenant, id);
      this.s.audit.record(now, { tenant, actor, action: 'photo.deleted', objectKind: 'photo', objectId: id, detail: { reason: 'consent-withdrawn' } });
    }
    if (state === 'granted') return { commands: 0 };
    this.s.outbox.cancelForSubject(tenant, subject);
    const commands = this.s.outbox.enqueueAll(tenant, { type: 'update-subject', record: this.record(tenant, subject) }, subject).length;
    checkpointWal(this.s.db);
    return { commands };
  }

  /** Marks a leaver: terminals drop them now; the sweeper deletes their photos per the tenant's setting. */
  leave(tenant: string, subject: string, actor: string): { commands: number } {
    this.row(tenant, subject);
    const now = this.s.clock.now();
    this.s.db.prepare('UPDATE subjects SET left_at = COALESCE(left_at, ?), updated_at = ? WHERE tenant = ? AND subject = ?').run(now, now, tenant, subject);
    this.s.audit.record(now, { tenant, actor, action: 'subject.left', objectKind: 'subject', objectId: subject });
    if (getSettings(this.s.db, tenant).leaverPhotoDays === 0) {
      // "At once" means now, not at the next sweep.
      const ids = this.s.db.prepare('SELECT id FROM photos WHERE tenant = ? AND subject = ?').pluck().all(tenant, subject) as string[];
      for (const id of ids) {
        this.s.vault.delete(tenant, id);
        this.s.audit.record(now, { tenant, actor, action: 'photo.deleted', objectKind: 'photo', objectId: id, detail: { reason: 'leaver' } });
      }
      const t = this.s.db.prepare('DELETE FROM templates WHERE tenant = ? AND subject = ? RETURNING id').all(tenant, subject) as Array<{ id: string }>;
      for (const r of t) this.s.audit.record(now, { tenant, actor, action: 'template.deleted', objectKind: 'template', objectId: r.id, detail: { reason: 'leaver' } });
      this.s.db.prepare('UPDATE punches SET photo_id = NULL WHERE tenant = ? AND subject = ?').run(tenant, subject);
    }
    this.s.outbox.cancelForSubject(tenant, subject);
    const commands = this.s.outbox.enqueueAll(tenant, { type: 'remove-subject', subject }, subject).length;
    checkpointWal(this.s.db);
    return { commands };
  }

  /**
   * Erasure: every photo (punch and reference), every template, the card and PIN hashes;
   * pending enrollments are cancelled and an erase command is queued to every terminal.
   * Punch records stay as time records under the now meaningless opaque id, without photos.
   */
  erase(tenant: string, subject: string, actor: string): { photos: number; templates: number; commands: number } {
    this.row(tenant, subject);
    const now = this.s.clock.now();
    const photos = this.s.db.prepare('SELECT id FROM photos WHERE tenant = ? AND subject = ?').pluck().all(tenant, subject) as string[];
    for (const id of photos) {
      this.s.vault.delete(tenant, id);
      this.s.audit.record(now, { tenant, actor, action: 'photo.deleted', objectKind: 'photo', objectId: id, detail: { reason: 'erasure' } });
    }
    let templates = 0;
    this.s.db.transaction(() => {
      templates = this.s.db.prepare('DELETE FROM templates WHERE tenant = ? AND subject = ?').run(tenant, subject).changes;
      this.s.db.prepare("UPDATE punches SET photo_id = NULL, recheck_state = CASE WHEN recheck_state IN ('pending') THEN 'cancelled' ELSE recheck_state END WHERE tenant = ? AND subject = ?").run(tenant, subject);
      this.s.db.prepare('DELETE FROM subjects WHERE tenant = ? AND subject = ?').run(tenant, subject);
      this.s.audit.record(now, { tenant, actor, action: 'subject.erased', objectKind: 'subject', objectId: subject, detail: { photos: photos.length, templates } });
    })();
    this.s.outbox.cancelForSubject(tenant, subject);
    const commands = this.s.outbox.enqueueAll(tenant, { type: 'erase-subject', subject }, subject).length;
    // Push freed pages (zeroed by secure_delete) out of the WAL so no copy of the erased rows lingers.
    checkpointWal(this.s.db);
    return { photos: photos.length, templates, commands };
  }

  /** Everything about one employee as a .tar.gz: subject.json plus their photos as JPEG files. */
  async export(tenant: string, subject: string, actor: string): Promise<Buffer> {
    const r = this.row(tenant, subject);
    const dir = mkdtempSync(join(tmpdir(), 'cf-export-'));
    try {
      const root = join(dir, `subject-${subject}`);
      mkdirSync(join(root, 'photos'), { recursive: true });
      const photoRows = this.s.db.prepare('SELECT id, kind, created_at AS createdAt FROM photos WHERE tenant = ? AND subject = ? ORDER BY created_at, id').all(tenant, subject) as Array<{ id: string; kind: string; createdAt: number }>;
      for (const p of photoRows) writeFileSync(join(root, 'photos', `${p.kind}-${p.id}.jpg`), this.s.vault.get(tenant, p.id));
      const doc = {
        exportedAt: this.s.clock.now(),
        tenant,
        subject,
        record: {
          cardHashes: JSON.parse(r.card_hashes) as unknown,
          pinSet: r.pin_hash !== null,
          accessGroups: this.groupsWithNames(tenant, r),
          faceConsent: r.face_consent === 1,
          leftAt: r.left_at,
          createdAt: r.created_at,
          updatedAt: r.updated_at,
        },
        consents: this.s.db.prepare('SELECT state, actor, policy_version AS policyVersion, at FROM consents WHERE tenant = ? AND subject = ? ORDER BY id').all(tenant, subject),
        templates: this.templates(tenant, subject),
        photos: photoRows.map((p) => ({ ...p, file: `photos/${p.kind}-${p.id}.jpg` })),
        punches: listPunches(this.s, tenant, { subject, limit: 1_000_000 }),
        commands: this.s.outbox.list(tenant, { subject, limit: 5000 }),
      };
      writeFileSync(join(root, 'subject.json'), JSON.stringify(doc, null, 2));
      const file = join(dir, 'export.tar.gz');
      await tar.c({ gzip: true, file, cwd: dir, portable: true }, [`subject-${subject}`]);
      this.s.audit.record(this.s.clock.now(), { tenant, actor, action: 'subject.exported', objectKind: 'subject', objectId: subject, detail: { photos: photoRows.length } });
      return readFileSync(file);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  /** For admins: each group's id (what terminals hold) with its name (which stays here). */
  private groupsWithNames(tenant: string, r: SubjectRow): Array<{ id: string; name: string }> {
    const ids = JSON.parse(r.access_groups) as string[];
    const names = this.s.accessGroups.names(tenant, ids);
    return ids.map((id, i) => ({ id, name: names[i]! }));
  }

  get(tenant: string, subject: string) {
    const r = this.row(tenant, subject);
    return {
      subject,
      accessGroups: this.groupsWithNames(tenant, r),
      faceConsent: r.face_consent === 1,
      leftAt: r.left_at,
      referencePhotos: this.referencePhotoIds(tenant, subject),
      templates: (this.s.db.prepare('SELECT COUNT(*) FROM templates WHERE tenant = ? AND subject = ?').pluck().get(tenant, subject) as number),
      consents: this.s.db.prepare('SELECT state, actor, policy_version AS policyVersion, at FROM consents WHERE tenant = ? AND subject = ? ORDER BY id').all(tenant, subject),
    };
  }
}
