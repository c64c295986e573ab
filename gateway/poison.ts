import { CloudError } from './cloud-client.js';

/**
 * Poison batches: the cloud refuses a whole request (400, 413, 422) when one item in it is bad
 * (a schema-invalid entry, an oversized envelope). Retrying the same batch would fail forever
 * and block everything queued behind it, so the batch is split in halves, in order, until the
 * bad item stands alone; that item is handed to onPoison (parked or dropped by the caller) and
 * every other item goes through. Any other failure (network, 5xx, 401/403, 404, 429) is not
 * about the content and is thrown to the caller's retry policy unchanged.
 */
const CONTENT_REFUSALS = new Set([400, 413, 422]);

export function isContentRefusal(err: unknown): err is CloudError {
  return err instanceof CloudError && CONTENT_REFUSALS.has(err.status);
}

/** The cloud's reason for refusing, without the request line (kept short for logs and the table). */
export function refusalReason(err: CloudError): string {
  return `${err.status}: ${err.message.replace(/^\S+ \S+ answered \d+: /, '')}`.slice(0, 300);
}

export async function sendIsolatingPoison<T>(
  items: readonly T[],
  send: (batch: readonly T[]) => Promise<void>,
  onPoison: (item: T, err: CloudError) => void,
): Promise<void> {
  if (items.length === 0) return;
  try {
    await send(items);
  } catch (err) {
    if (!isContentRefusal(err)) throw err;
    if (items.length === 1) return onPoison(items[0]!, err);
    const half = Math.ceil(items.length / 2);
    await sendIsolatingPoison(items.slice(0, half), send, onPoison);
    await sendIsolatingPoison(items.slice(half), send, onPoison);
  }
}
