import pino, { type DestinationStream, type Logger } from 'pino';

/**
 * The pino logger every role uses. Log objects pass through sanitize() before they are
 * written, so secrets, photos, templates and card numbers cannot reach a log by accident:
 * sensitive keys are replaced by "[redacted]" and binary data by its length, at any depth.
 */
export type { Logger } from 'pino';

export interface LoggerOptions {
  name: string;
  level?: string;
  destination?: DestinationStream;
}

export function createLogger(opts: LoggerOptions): Logger {
  return pino(
    {
      level: opts.level ?? process.env.CLOCKFACE_LOG__LEVEL ?? 'info',
      base: { pid: process.pid, role: opts.name },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { log: (obj) => sanitize(obj) as Record<string, unknown> },
      serializers: { err: serializeError },
    },
    opts.destination ?? pino.destination({ fd: 2, sync: false }),
  );
}

/** Key names (lowercased, without - and _) whose values never reach a log. */
const SENSITIVE_EXACT = new Set(['pin', 'card', 'cardno', 'cardnumber', 'cardhash', 'cardhashes', 'uid', 'photo', 'image', 'jpeg', 'frame']);
const SENSITIVE_PARTS = [
  'secret', 'password', 'passphrase', 'token', 'apikey', 'authorization', 'cookie', 'privatekey', 'pepper',
  'pinhash', 'pincode', 'cardnumber', 'photo', 'jpeg', 'template', 'vector', 'embedding', 'descriptor', 'datakey', 'plaintext',
];

export function isSensitiveKey(key: string): boolean {
  const k = key.toLowerCase().replace(/[-_]/g, '');
  return SENSITIVE_EXACT.has(k) || SENSITIVE_PARTS.some((p) => k.includes(p));
}

const MAX_DEPTH = 6;
const MAX_STRING = 2048;

export function sanitize(value: unknown, depth = 0): unknown {
  if (value === null || typeof value !== 'object') {
    if (typeof value === 'string' && value.length > MAX_STRING) return `[string of ${value.length} chars]`;
    return value;
  }
  if (Buffer.isBuffer(value) || ArrayBuffer.isView(value)) return `[binary ${(value as ArrayBufferView).byteLength} bytes]`;
  if (value instanceof ArrayBuffer) return `[binary ${value.byteLength} bytes]`;
  if (value instanceof Error) return serializeError(value);
  if (depth >= MAX_DEPTH) return '[deep]';
  if (Array.isArray(value)) return value.slice(0, 50).map((v) => sanitize(v, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = isSensitiveKey(k) ? '[redacted]' : sanitize(v, depth + 1);
  return out;
}

function serializeError(err: unknown): unknown {
  if (!(err instanceof Error)) return sanitize(err, 1);
  const code = (err as { code?: unknown }).code;
  return { type: err.name, message: err.message, ...(code !== undefined ? { code } : {}), stack: err.stack };
}
