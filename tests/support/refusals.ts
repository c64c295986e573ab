import { readFileSync } from 'node:fs';

/**
 * The promise "the reason for every refused message is logged", made checkable: the
 * refusal lines of a pino log (warn or error, saying something was refused, rejected, ignored,
 * cut off or left without PUBACK) and which of them carry no `reason` field.
 */
export interface LogLine {
  level: number;
  msg: string;
  reason?: unknown;
  [k: string]: unknown;
}

const REFUSAL = /refus|reject|ignored|disconnecting|no PUBACK/i;

/** A log file's pino lines. */
export function logFile(path: string): LogLine[] {
  return logLines(readFileSync(path, 'utf8').split('\n'));
}

/** Parses pino JSON lines; lines that are not JSON (a killed process's half line) are skipped. */
export function logLines(lines: string[]): LogLine[] {
  const out: LogLine[] = [];
  for (const l of lines) {
    if (!l.startsWith('{')) continue;
    try {
      const j = JSON.parse(l) as LogLine;
      if (typeof j.level === 'number' && typeof j.msg === 'string') out.push(j);
    } catch {
      // a half-written last line of a killed process
    }
  }
  return out;
}

export function refusals(lines: LogLine[]): LogLine[] {
  return lines.filter((l) => l.level >= 40 && REFUSAL.test(l.msg));
}

/** Refusal lines without a `reason` field, as "msg" strings (deduplicated) for a readable failure. */
export function refusalsWithoutReason(lines: LogLine[]): string[] {
  return [...new Set(refusals(lines).filter((l) => typeof l.reason !== 'string' || l.reason.length === 0).map((l) => l.msg))];
}
