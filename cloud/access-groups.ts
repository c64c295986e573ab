import { ACCESS_GROUP_ID_REGEX, ID_REGEX, newAccessGroupId } from '../protocol/index.js';
import type { AuditLog } from './audit.js';
import type { Db } from './db.js';

/**
 * The tenant's directory of access groups: an opaque id ("g-…", protocol/ids.ts) for each
 * human name. Terminals only ever hold the ids — in subject records and in their policy's
 * group → schedule map — so a name typed into the admin API ("bob-smith-ssn-123456789", an
 * email) stays in the cloud. The API takes names or ids; a name is added on first use. This
 * module owns the `access_groups` table.
 */
export const GROUP_NAME_MAX = 64;

export type AccessGroupErrorCode = 'access-group.unknown' | 'access-group.name-invalid' | 'access-policy.invalid';

export class AccessGroupError extends Error {
  override readonly name = 'AccessGroupError';
  readonly status = 400;
  constructor(
    readonly code: AccessGroupErrorCode,
    message: string,
  ) {
    super(`${code}: ${message}`);
  }
}

export interface AccessGroup {
  id: string;
  name: string;
  createdAt: number;
}

export class AccessGroups {
  constructor(
    private readonly db: Db,
    private readonly audit: AuditLog,
  ) {}

  list(tenant: string): AccessGroup[] {
    return this.db.prepare('SELECT id, name, created_at AS createdAt FROM access_groups WHERE tenant = ? ORDER BY name').all(tenant) as AccessGroup[];
  }

  /** The group with this name, made (and audited) if the tenant has none yet. */
  ensure(tenant: string, name: string, actor: string, at: number): AccessGroup & { created: boolean } {
    const clean = checkName(name);
    return this.db.transaction(() => {
      const found = this.db.prepare('SELECT id, name, created_at AS createdAt FROM access_groups WHERE tenant = ? AND name = ?').get(tenant, clean) as AccessGroup | undefined;
      if (found) return { ...found, created: false };
      const id = newAccessGroupId();
      this.db.prepare('INSERT INTO access_groups (tenant, id, name, created_at) VALUES (?, ?, ?, ?)').run(tenant, id, clean, at);
      // The audit entry names the group by id only: the audit log holds no free text.
      this.audit.record(at, { tenant, actor, action: 'access-group.created', objectKind: 'access-group', objectId: id });
      return { id, name: clean, createdAt: at, created: true };
    })();
  }

  /**
   * Group references as the API takes them (ids of this tenant's groups, or names) → ids, in
   * order, without repeats. An id-shaped reference that is not in the directory is refused
   * rather than taken for a name.
   */
  resolve(tenant: string, refs: readonly string[], actor: string, at: number): string[] {
    const known = this.db.prepare('SELECT 1 FROM access_groups WHERE tenant = ? AND id = ?').pluck();
    const ids = refs.map((ref) => {
      if (ACCESS_GROUP_ID_REGEX.test(ref)) {
        if (known.get(tenant, ref) === undefined) throw new AccessGroupError('access-group.unknown', `no access group ${ref} in this tenant`);
        return ref;
      }
      return this.ensure(tenant, ref, actor, at).id;
    });
    return [...new Set(ids)];
  }

  /** Names for ids (for admins: the subject record, the export); an id without a row maps to itself. */
  names(tenant: string, ids: readonly string[]): string[] {
    const byId = this.db.prepare('SELECT name FROM access_groups WHERE tenant = ? AND id = ?').pluck();
    return ids.map((id) => (byId.get(tenant, id) as string | undefined) ?? id);
  }

  /**
   * A terminal policy as an admin writes it → as terminals receive it: the group → schedule map
   * of `access.groups` keyed by group id. Schedule names are the terminal's own bounded codes
   * (like ids: "always", "office"), never free text. The rest of the policy is the terminal's
   * to validate (device/policy.ts); the cloud does not import the device tier.
   */
  policyForTerminals(tenant: string, policy: Record<string, unknown>, actor: string, at: number): Record<string, unknown> {
    const access = policy.access;
    if (access === undefined) return policy;
    if (!isRecord(access)) throw new AccessGroupError('access-policy.invalid', 'policy.access must be an object');
    const groups = access.groups;
    if (groups === undefined) return policy;
    if (!isRecord(groups)) throw new AccessGroupError('access-policy.invalid', 'policy.access.groups must map groups to schedule names');
    const mapped: Record<string, string> = {};
    for (const [ref, schedule] of Object.entries(groups)) {
      if (typeof schedule !== 'string' || !ID_REGEX.test(schedule)) {
        throw new AccessGroupError('access-policy.invalid', 'each access group maps to a schedule name: lowercase letters, digits and inner dashes');
      }
      const [id] = this.resolve(tenant, [ref], actor, at);
      mapped[id!] = schedule;
    }
    return { ...policy, access: { ...access, groups: mapped } };
  }
}

function checkName(name: string): string {
  const clean = name.trim();
  if (clean.length === 0 || clean.length > GROUP_NAME_MAX || /\p{Cc}/u.test(clean)) {
    throw new AccessGroupError('access-group.name-invalid', `an access group name is 1-${GROUP_NAME_MAX} printable characters`);
  }
  if (ACCESS_GROUP_ID_REGEX.test(clean)) throw new AccessGroupError('access-group.name-invalid', 'an access group name cannot look like a group id');
  return clean;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Migration for files written before the directory: subjects' access groups were stored as
 * names (which reached terminals as they were). Each distinct name gets an id per tenant, and
 * every subject's list is rewritten to ids. Idempotent: ids are left as they are.
 */
export function migrateGroupNamesToIds(db: Db, now: number): number {
  const rows = db.prepare('SELECT tenant, subject, access_groups AS groups FROM subjects').all() as Array<{ tenant: string; subject: string; groups: string }>;
  const find = db.prepare('SELECT id FROM access_groups WHERE tenant = ? AND name = ?').pluck();
  const insert = db.prepare('INSERT INTO access_groups (tenant, id, name, created_at) VALUES (?, ?, ?, ?)');
  const update = db.prepare('UPDATE subjects SET access_groups = ? WHERE tenant = ? AND subject = ?');
  let changed = 0;
  db.transaction(() => {
    for (const r of rows) {
      const names = JSON.parse(r.groups) as string[];
      if (names.every((n) => ACCESS_GROUP_ID_REGEX.test(n))) continue;
      const ids = names.map((n) => {
        if (ACCESS_GROUP_ID_REGEX.test(n)) return n;
        let id = find.get(r.tenant, n) as string | undefined;
        if (!id) insert.run(r.tenant, (id = newAccessGroupId()), n, now);
        return id;
      });
      update.run(JSON.stringify([...new Set(ids)]), r.tenant, r.subject);
      changed++;
    }
  })();
  return changed;
}
