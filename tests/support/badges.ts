import { logFile, type LogLine } from './refusals.js';

/*
 * "A badge presented is a punch or a refusal with a logged reason — never silently nothing",
 * made countable from a terminal's log: each card read logs "card read", then exactly one
 * outcome, a "punch" line (decision and reasons) or a "trigger ignored" line (reason). A
 * reader repeat (the same card still on the reader) is an outcome without a read of its own.
 */
export interface BadgeAccount {
  /** "card read" lines. */
  reads: number;
  /** Card punches (credential card, card+face or card+pin), by decision/reason, e.g. "denied:no-face". */
  punches: Record<string, number>;
  /** Card triggers not acted on, by reason. */
  ignored: Record<string, number>;
  /** Event ids of the card punches, in log order. */
  punchIds: string[];
  /** Every "trigger ignored" line (card, face and keypad), by reason: what /metrics counts. */
  ignoredAll: Record<string, number>;
}

const CARD_CREDENTIALS = new Set(['card', 'card+face', 'card+pin']);

const bump = (m: Record<string, number>, k: string) => (m[k] = (m[k] ?? 0) + 1);

/** The badge account of a run of log lines (one process lifetime, or a whole file). */
export function badgeAccount(lines: LogLine[]): BadgeAccount {
  const a: BadgeAccount = { reads: 0, punches: {}, ignored: {}, punchIds: [], ignoredAll: {} };
  for (const l of lines) {
    if (l.msg === 'card read') a.reads++;
    else if (l.msg === 'punch' && CARD_CREDENTIALS.has(String(l.credential))) {
      const reasons = (l.reasons as string[] | undefined) ?? [];
      bump(a.punches, `${String(l.decision)}${reasons.length ? `:${reasons.join('+')}` : ''}`);
      a.punchIds.push(String(l.eventId));
    } else if (l.msg === 'trigger ignored') {
      bump(a.ignoredAll, String(l.reason));
      if (l.trigger === 'card') bump(a.ignored, String(l.reason));
    }
  }
  return a;
}

export const total = (m: Record<string, number>) => Object.values(m).reduce((s, n) => s + n, 0);

/** Card outcomes: punches plus traced refusals. */
export const outcomes = (a: BadgeAccount) => total(a.punches) + total(a.ignored);

/** A terminal's log split into process lifetimes (by the pid on every pino line), in order. */
export function lifetimes(file: string): Array<{ pid: number; lines: LogLine[] }> {
  const runs: Array<{ pid: number; lines: LogLine[] }> = [];
  for (const l of logFile(file)) {
    const pid = Number(l.pid);
    if (runs.at(-1)?.pid !== pid) runs.push({ pid, lines: [] });
    runs.at(-1)!.lines.push(l);
  }
  return runs;
}

/** clockface_device_triggers_ignored_total by reason, from a /metrics text. */
export function ignoredMetric(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const m of text.matchAll(/^clockface_device_triggers_ignored_total\{reason="([^"]+)"\} (\d+)$/gm)) if (Number(m[2]) > 0) out[m[1]!] = Number(m[2]);
  return out;
}
