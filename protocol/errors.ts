/**
 * Every rejection in the wire contract is a ProtocolError with a stable machine-readable code
 * naming the check that failed. Messages never carry key material or payload bytes: they are
 * written to logs and sent upstream in rejection reports.
 */
export const PROTOCOL_ERROR_CODES = [
  'id.invalid',
  'topic.invalid',
  'encoding.not-canonical',
  'envelope.too-large',
  'envelope.malformed',
  'envelope.header-invalid',
  'envelope.context-mismatch',
  'envelope.unknown-signer',
  'envelope.signature-invalid',
  'envelope.wrong-recipient',
  'envelope.decrypt-failed',
  'envelope.expired',
  'envelope.outside-time-window',
  'envelope.replayed',
  'message.malformed-json',
  'message.schema-invalid',
  'key.invalid',
] as const;

export type ProtocolErrorCode = (typeof PROTOCOL_ERROR_CODES)[number];

export class ProtocolError extends Error {
  override readonly name = 'ProtocolError';
  constructor(
    readonly code: ProtocolErrorCode,
    message: string,
  ) {
    super(`${code}: ${message}`);
  }
}

export function isProtocolError(err: unknown, code?: ProtocolErrorCode): err is ProtocolError {
  return err instanceof ProtocolError && (code === undefined || err.code === code);
}
