import type { Db } from './db.js';

/**
 * Timesheets for payroll from timekeeping punches: per subject (opaque id, never a name) and
 * per day in the tenant's time zone, the in/out pairs, the minutes worked, and what needs a
 * person: punches flagged for review, and pairs missing their out or their in.
 *
 * Pairing walks one subject's punches in time order (the terminal's wall time, the time the
 * person stood at the door): an `in` opens a pair, the next `out` within MAX_SHIFT_MS closes
 * it. An `in` while a pair is open leaves that pair incomplete (missing out); an `out` with
 * nothing open is incomplete (missing in). `auto` is a toggle the terminal could not resolve
 * (it records in/out when it can): it closes an open pair, otherwise opens one. A pair
 * belongs to the day its `in` falls on, so a night shift is one pair on the day it started.
 * Denied punches and door-access punches are not time records and are left out.
 */
export const MAX_SHIFT_MS = 24 * 3_600_000;
/** Longest report, so one request cannot make the server pair years of punches. */
export const MAX_TIMESHEET_DAYS = 366;
const DAY_MS = 86_400_000;

export class TimesheetError extends Error {}

export interface TimesheetPunch {
  eventId: string;
  device: string;
  /** Terminal wall time, ms since the epoch. */
  at: number;
  /** The same instant in the tenant's zone, ISO 8601 with offset. */
  local: string;
  action: 'in' | 'out' | 'auto';
  clockSync: string;
  /** none, open (flagged, not yet reviewed), cleared or confirmed. */
  review: string;
  reviewReasons: string[];
}

export interface TimesheetPair {
  in: TimesheetPunch | null;
  out: TimesheetPunch | null;
  /** Whole minutes between in and out; null for an incomplete pair. */
  minutes: number | null;
  incomplete: 'missing-out' | 'missing-in' | null;
}

export interface TimesheetDay {
  subject: string;
  date: string;
  pairs: TimesheetPair[];
  workedMinutes: number;
  incomplete: boolean;
  /** A punch of the day is flagged and not yet reviewed. */
  needsReview: boolean;
}

export interface TimesheetQuery {
  from: string;
  to: string;
  subject?: string;
}

/** Parses YYYY-MM-DD as a calendar date (UTC midnight ms); throws on 2026-02-30 and friends. */
function calendarDate(name: string, s: string): number {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(s);
  const ms = m ? Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!) : NaN;
  if (!m || Number.isNaN(ms) || new Date(ms).toISOString().slice(0, 10) !== s) throw new TimesheetError(`${name} must be a calendar date YYYY-MM-DD`);
  return ms;
}

/** Formats instants in one zone: the local calendar date and an ISO 8601 local time with offset. */
class ZoneClock {
  private readonly fmt: Intl.DateTimeFormat;
  constructor(readonly zone: string) {
    this.fmt = new Intl.DateTimeFormat('en-CA', {
      timeZone: zone,
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
      hourCycle: 'h23',
      timeZoneName: 'longOffset',
    });
  }

  parts(at: number): { date: string; iso: string } {
    const p = Object.fromEntries(this.fmt.formatToParts(new Date(at)).map((x) => [x.type, x.value])) as Record<string, string>;
    const date = `${p.year}-${p.month}-${p.day}`;
    // "GMT+05:30" → "+05:30"; plain "GMT" is UTC.
    const offset = (p.timeZoneName ?? 'GMT').replace(/^GMT/, '') || '+00:00';
    return { date, iso: `${date}T${p.hour}:${p.minute}:${p.second}${offset}` };
  }
}

interface Row {
  eventId: string;
  device: string;
  subject: string;
  action: 'in' | 'out' | 'auto';
  wallTime: number;
  clockSync: string;
  reviewState: string;
  reviewReasons: string;
}

export function buildTimesheet(db: Db, tenant: string, timeZone: string, q: TimesheetQuery): TimesheetDay[] {
  const from = calendarDate('from', q.from);
  const to = calendarDate('to', q.to);
  if (to < from) throw new TimesheetError('to must not be before from');
  if ((to - from) / DAY_MS + 1 > MAX_TIMESHEET_DAYS) throw new TimesheetError(`a timesheet covers at most ${MAX_TIMESHEET_DAYS} days`);
  const zone = new ZoneClock(timeZone);
  // Local days lie within ±14 h of UTC days; a shift that ends on the first day may have begun
  // up to MAX_SHIFT_MS earlier, and one that begins on the last day may end that much later.
  const lo = from - DAY_MS - MAX_SHIFT_MS;
  const hi = to + 2 * DAY_MS + MAX_SHIFT_MS;
  const rows = db
    .prepare(
      `SELECT event_id AS eventId, device, subject, action, wall_time AS wallTime, clock_sync AS clockSync,
         review_state AS reviewState, review_reasons AS reviewReasons
       FROM punches
       WHERE tenant = ? AND subject IS NOT NULL AND (? IS NULL OR subject = ?) AND action IN ('in', 'out', 'auto')
         AND decision != 'denied' AND wall_time >= ? AND wall_time < ?
       ORDER BY subject, wall_time, event_id`,
    )
    .all(tenant, q.subject ?? null, q.subject ?? null, lo, hi) as Row[];

  const days = new Map<string, TimesheetDay>();
  const add = (subject: string, pair: TimesheetPair) => {
    const anchor = (pair.in ?? pair.out)!;
    const date = anchor.local.slice(0, 10);
    if (date < q.from || date > q.to) return;
    const key = `${subject} ${date}`;
    let day = days.get(key);
    if (!day) days.set(key, (day = { subject, date, pairs: [], workedMinutes: 0, incomplete: false, needsReview: false }));
    day.pairs.push(pair);
    day.workedMinutes += pair.minutes ?? 0;
    day.incomplete ||= pair.incomplete !== null;
    day.needsReview ||= [pair.in, pair.out].some((p) => p?.review === 'open');
  };
  const punch = (r: Row): TimesheetPunch => ({
    eventId: r.eventId,
    device: r.device,
    at: r.wallTime,
    local: zone.parts(r.wallTime).iso,
    action: r.action,
    clockSync: r.clockSync,
    review: r.reviewState,
    reviewReasons: JSON.parse(r.reviewReasons) as string[],
  });

  let subject: string | null = null;
  let open: TimesheetPunch | null = null;
  const closeOpen = () => {
    if (open && subject) add(subject, { in: open, out: null, minutes: null, incomplete: 'missing-out' });
    open = null;
  };
  for (const r of rows) {
    if (r.subject !== subject) {
      closeOpen();
      subject = r.subject;
    }
    const p = punch(r);
    if (open && p.at - open.at > MAX_SHIFT_MS) closeOpen();
    const direction = p.action === 'auto' ? (open ? 'out' : 'in') : p.action;
    if (direction === 'in') {
      closeOpen();
      open = p;
    } else if (open) {
      add(r.subject, { in: open, out: p, minutes: Math.floor((p.at - open.at) / 60_000), incomplete: null });
      open = null;
    } else {
      add(r.subject, { in: null, out: p, minutes: null, incomplete: 'missing-in' });
    }
  }
  closeOpen();
  return [...days.values()].sort((a, b) => (a.subject === b.subject ? (a.date < b.date ? -1 : 1) : a.subject < b.subject ? -1 : 1));
}

/** One CSV row per pair (RFC 4180, CRLF); every value is an id, a date, a time or a number, so nothing needs quoting. */
export function timesheetCsv(days: TimesheetDay[]): string {
  const lines = ['subject,date,in,out,minutes,incomplete,needs_review,in_event,out_event'];
  for (const d of days) {
    for (const p of d.pairs) {
      const review = [p.in, p.out].some((x) => x?.review === 'open');
      lines.push([d.subject, d.date, p.in?.local ?? '', p.out?.local ?? '', p.minutes ?? '', p.incomplete ?? '', review ? 'yes' : 'no', p.in?.eventId ?? '', p.out?.eventId ?? ''].join(','));
    }
  }
  return `${lines.join('\r\n')}\r\n`;
}
