import { ProtocolError } from './errors.js';

/**
 * Replay protection: each sender stream (kind + tenant + device + signing key) carries a
 * strictly increasing sequence number. A message whose sequence is not above the last one
 * accepted is a replay or a reorder and is refused. Tiers persist the last sequence (SQLite)
 * by implementing SequenceStore; the in-memory store serves tests and short-lived tools.
 */
export interface SequenceStore {
  lastSequence(stream: string): number | undefined;
  recordSequence(stream: string, seq: number): void;
}

export class MemorySequenceStore implements SequenceStore {
  private readonly last = new Map<string, number>();
  lastSequence(stream: string): number | undefined {
    return this.last.get(stream);
  }
  recordSequence(stream: string, seq: number): void {
    this.last.set(stream, seq);
  }
}

export function assertFresh(store: SequenceStore, stream: string, seq: number): void {
  const last = store.lastSequence(stream);
  if (last !== undefined && seq <= last) {
    throw new ProtocolError(
      'envelope.replayed',
      seq === last ? `sequence ${seq} was already accepted` : `sequence ${seq} is older than the last accepted (${last})`,
    );
  }
}
