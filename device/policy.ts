import { DEFAULT_THRESHOLDS } from './face/scores.js';
import { z } from 'zod';
import { ID_REGEX, accessGroupMap, keyCheckedMap } from '../protocol/index.js';

/*
 * The organisation's policy (per tenant, pushed with config-update commands) and the door rules
 * that go with it. Pure data + pure checks, so the decision flow stays easy to test.
 */

const hhmm = z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'time must be HH:MM');
/** Schedule names are codes, as the cloud requires them ("office", "night-shift"): no free text on a terminal. */
const SCHEDULE_NAME = { regex: ID_REGEX, noun: 'a schedule name', form: 'codes of lowercase letters, digits and inner dashes' };
const ScheduleName = z.string().regex(ID_REGEX, 'a schedule name is a code of lowercase letters, digits and inner dashes');
const Window = z.object({ days: z.array(z.number().int().min(0).max(6)).min(1), from: hhmm, to: hhmm }).strict();

export const Policy = z
  .object({
    /** Which credentials open a punch: card-only, card+face (1:1), face-only (1:N), card-or-face. */
    credentials: z.enum(['card-only', 'card+face', 'face-only', 'card-or-face']).default('card+face'),
    faceCheck: z.enum(['none', 'face-exists', 'face-match']).default('face-match'),
    /** On a failed face check: refuse, or accept and flag the punch for review. */
    onFailedCheck: z.enum(['block', 'flag']).default('block'),
    livenessRequired: z.boolean().default(false),
    photoAtPunch: z.boolean().default(true),
    /** Employees without face consent use card + PIN, whatever the credentials mode. */
    pinFallback: z.boolean().default(true),
    /**
     * The terminal's decision thresholds: the only ones a site tunes (the device config's `face`
     * section has none). Defaults are DEFAULT_THRESHOLDS, which the `clockface face` tools use.
     */
    thresholds: z
      .object({
        /** 1:1 (the card names the person, the face confirms). Defaults calibrated in docs/face-engine.md. */
        match: z.number().min(0).max(1).default(DEFAULT_THRESHOLDS.verify),
        /** 1:N (face only): stricter, since everyone enrolled is a candidate. */
        identify: z.number().min(0).max(1).default(DEFAULT_THRESHOLDS.identify),
        /** 1:N: the best subject must beat the runner-up by this much. */
        margin: z.number().min(0).max(1).default(DEFAULT_THRESHOLDS.identifyMargin),
        /**
         * The detector's confidence that a face is there. The tiny detector's score is not a
         * calibrated probability (clear frontal faces score 0.45–0.8); its own cut-off is 0.4, so
         * the default accepts what it accepts and the quality gate judges the rest.
         */
        faceExists: z.number().min(0).max(1).default(0.4),
        liveness: z.number().min(0).max(1).default(0.5),
      })
      .strict()
      .prefault({}),
    burst: z
      .object({
        frames: z.number().int().min(1).max(10).default(3),
        /** How long to wait for the burst's frames. */
        timeoutMs: z.number().int().min(100).max(10_000).default(2000),
        /** How long the face engine may take over one analysis before it counts as a fault. */
        analysisTimeoutMs: z.number().int().min(100).max(30_000).default(3000),
      })
      .strict()
      .prefault({}),
    pinTimeoutMs: z.number().int().min(1000).max(60_000).default(10_000),
    /**
     * Wrong PINs at the keypad, per card holder: after `attempts` wrong PINs within `windowMs`
     * the holder's card + PIN path is locked for `lockMs` (kept in the device store, so a
     * restart does not reset it). Each refusal is a punch with reason pin-wrong or pin-locked.
     */
    pinLockout: z
      .object({
        attempts: z.number().int().min(1).max(20).default(3),
        windowMs: z.number().int().min(1000).max(86_400_000).default(300_000),
        lockMs: z.number().int().min(1000).max(86_400_000).default(900_000),
      })
      .strict()
      .prefault({}),
    /**
     * Triggers that arrive while a decision is in flight (a face burst, a PIN prompt) wait their
     * turn in a FIFO of `size`, each at most `maxWaitMs` (long enough for a PIN prompt and a
     * burst); a trigger past either bound is refused with a logged, counted reason.
     */
    queue: z
      .object({
        size: z.number().int().min(0).max(32).default(4),
        maxWaitMs: z.number().int().min(100).max(120_000).default(15_000),
      })
      .strict()
      .prefault({}),
    timekeeping: z
      .object({
        action: z.enum(['in', 'out', 'auto']).default('auto'),
        debounceMs: z.number().int().min(0).max(3_600_000).default(60_000),
      })
      .strict()
      .prefault({}),
    access: z
      .object({
        door: z.string().regex(/^[a-z0-9]+(-[a-z0-9]+)*$/).default('door'),
        pulseMs: z.number().int().min(100).max(60_000).optional(),
        /**
         * access group → schedule name ("always" needs no schedule). Keys are the cloud's opaque
         * group ids ("g-" + 12 base32), never a group's name: the same rule as the contract's.
         */
        groups: accessGroupMap(ScheduleName).default({}),
        schedules: keyCheckedMap(SCHEDULE_NAME, z.array(Window)).default({}),
        /** YYYY-MM-DD dates (local time) on which scheduled groups are closed. */
        holidays: z.array(z.string().regex(/^\d{4}-\d{2}-\d{2}$/)).default([]),
        antiPassback: z.object({ enabled: z.boolean().default(false), windowMs: z.number().int().min(0).default(300_000) }).strict().prefault({}),
        /**
         * Send each grant as a Wiegand frame to an external panel. Unset: whenever the hardware
         * has a Wiegand output (hardware.wiegand.enabled, as the pi-wiegand profile sets), since
         * an output fitted for a panel is there to be used; false turns it off, true asks for it.
         */
        wiegand: z.boolean().optional(),
      })
      .strict()
      .prefault({}),
  })
  .strict();
export type Policy = z.infer<typeof Policy>;

export type AccessReason = 'not-in-access-group' | 'outside-schedule' | 'holiday';

/** Checks access groups, weekly schedules and holidays; null when the subject may pass at `now`. */
export function checkAccess(policy: Policy, groups: readonly string[], now: Date): AccessReason | null {
  const open = groups.filter((g) => policy.access.groups[g] !== undefined);
  if (open.length === 0) return 'not-in-access-group';
  const day = localDate(now);
  let sawHoliday = false;
  for (const g of open) {
    const scheduleName = policy.access.groups[g]!;
    if (scheduleName === 'always') return null;
    if (policy.access.holidays.includes(day)) {
      sawHoliday = true;
      continue;
    }
    const windows = policy.access.schedules[scheduleName] ?? [];
    const minute = now.getHours() * 60 + now.getMinutes();
    if (windows.some((w) => w.days.includes(now.getDay()) && minute >= toMinutes(w.from) && minute < toMinutes(w.to))) return null;
  }
  return sawHoliday ? 'holiday' : 'outside-schedule';
}

export function localDate(d: Date): string {
  return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')}`;
}

function toMinutes(hhmmText: string): number {
  const [h, m] = hhmmText.split(':').map(Number) as [number, number];
  return h * 60 + m;
}
