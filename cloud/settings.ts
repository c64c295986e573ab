import type { Db } from './db.js';

/**
 * Per-tenant retention and re-check policy. Retention is 1 day to 7 years, never longer:
 * the bounds are enforced here, for every caller, not only by the HTTP schema.
 */
export const MAX_RETENTION_DAYS = 7 * 365 + 2; // seven years, leap days included
export const MIN_RETENTION_DAYS = 1;

export interface TenantSettings {
  photoRetentionDays: number;
  punchRetentionDays: number;
  /** 0: a leaver's photos go at once; N: N days after they leave. */
  leaverPhotoDays: number;
  recheckFaceExists: boolean;
  recheckSimilarity: boolean;
  minFaceExists: number;
  minSimilarity: number;
  /** IANA time zone (e.g. Europe/Berlin) in which timesheet days begin and end. */
  timeZone: string;
  contractEndedAt: number | null;
}

/** Whether Intl knows the zone (IANA names, plus UTC). */
export function isTimeZone(zone: string): boolean {
  if (!/^[A-Za-z0-9_+\-/]{1,64}$/.test(zone)) return false;
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

export class SettingsError extends Error {}

export function getSettings(db: Db, tenant: string): TenantSettings {
  const r = db
    .prepare(
      `SELECT photo_retention_days AS p, punch_retention_days AS q, leaver_photo_days AS l, recheck_face_exists AS fe,
        recheck_similarity AS fs, min_face_exists AS mfe, min_similarity AS ms, time_zone AS tz, contract_ended_at AS ce FROM tenants WHERE id = ?`,
    )
    .get(tenant) as { p: number; q: number; l: number; fe: number; fs: number; mfe: number; ms: number; tz: string; ce: number | null } | undefined;
  if (!r) throw new SettingsError(`tenant ${tenant} is unknown`);
  return {
    photoRetentionDays: r.p,
    punchRetentionDays: r.q,
    leaverPhotoDays: r.l,
    recheckFaceExists: r.fe === 1,
    recheckSimilarity: r.fs === 1,
    minFaceExists: r.mfe,
    minSimilarity: r.ms,
    timeZone: r.tz,
    contractEndedAt: r.ce,
  };
}

/** True once the tenant's contract has ended: nothing new is stored for it. */
export function contractEnded(db: Db, tenant: string, now: number): boolean {
  const at = db.prepare('SELECT contract_ended_at FROM tenants WHERE id = ?').pluck().get(tenant) as number | null | undefined;
  return at !== null && at !== undefined && at <= now;
}

const days = (name: string, v: number) => {
  if (!Number.isInteger(v) || v < MIN_RETENTION_DAYS || v > MAX_RETENTION_DAYS) {
    throw new SettingsError(`${name} must be a whole number of days from ${MIN_RETENTION_DAYS} to ${MAX_RETENTION_DAYS} (7 years)`);
  }
  return v;
};

export function updateSettings(db: Db, tenant: string, patch: Partial<Omit<TenantSettings, 'contractEndedAt'>>): TenantSettings {
  const cur = getSettings(db, tenant);
  const next = { ...cur, ...patch };
  days('photoRetentionDays', next.photoRetentionDays);
  days('punchRetentionDays', next.punchRetentionDays);
  if (!Number.isInteger(next.leaverPhotoDays) || next.leaverPhotoDays < 0 || next.leaverPhotoDays > next.photoRetentionDays) {
    throw new SettingsError('leaverPhotoDays must be 0 (at once) up to the photo retention');
  }
  for (const [k, v] of [['minFaceExists', next.minFaceExists], ['minSimilarity', next.minSimilarity]] as const) {
    if (!(v >= 0 && v <= 1)) throw new SettingsError(`${k} must be between 0 and 1`);
  }
  if (!isTimeZone(next.timeZone)) throw new SettingsError(`timeZone ${String(next.timeZone).slice(0, 64)} is not an IANA time zone (e.g. Europe/Berlin, UTC)`);
  db.prepare(
    `UPDATE tenants SET photo_retention_days = ?, punch_retention_days = ?, leaver_photo_days = ?, recheck_face_exists = ?,
      recheck_similarity = ?, min_face_exists = ?, min_similarity = ?, time_zone = ? WHERE id = ?`,
  ).run(
    next.photoRetentionDays, next.punchRetentionDays, next.leaverPhotoDays, next.recheckFaceExists ? 1 : 0,
    next.recheckSimilarity ? 1 : 0, next.minFaceExists, next.minSimilarity, next.timeZone, tenant,
  );
  return getSettings(db, tenant);
}
