import type { Logger } from 'pino';
import { checkPin, hashPinAsync, isLegacyCardHash, legacyCardHash, upgradeCardHash } from '../protocol/index.js';
import type { DeviceStore, StoredSubject } from './store.js';

/**
 * The terminal's side of protocol/credentials.ts: finds a subject by the badge just read and
 * checks a typed PIN, with the tenant pepper, off the event loop. Hashes made by release 1 (bare
 * HMAC card hashes, unpeppered PIN hashes) are replaced in place as they are met: a card hash at
 * once in the background (its v2 form needs neither the number nor the pepper) or when that card
 * is read, a PIN hash when its PIN is typed right. So a stolen disk holds v2 hashes only, soon
 * after an upgrade, and no badge or PIN is refused for having been enrolled by the old release.
 */
export class CredentialCheck {
  /**
   * `release-1`: look badges up by the bare HMAC as release 1 did, with no upgrade. Only the
   * bench sets it, to measure badge → relay before and after in one interleaved run.
   */
  scheme: 'current' | 'release-1' = 'current';
  private closed = false;
  private upgrading: Promise<number> = Promise.resolve(0);

  constructor(private readonly o: { store: DeviceStore; pepper: Buffer; log: Logger }) {}

  /** The subject whose badge this is, or undefined. */
  async subjectByCard(cardNumber: string): Promise<StoredSubject | undefined> {
    const { store, pepper } = this.o;
    const v1 = legacyCardHash(pepper, cardNumber);
    if (this.scheme === 'release-1') return store.subjectByCardHash(v1);
    const v2 = await upgradeCardHash(v1);
    const found = store.subjectByCardHash(v2);
    if (found || this.closed) return found;
    const old = store.subjectByCardHash(v1);
    if (!old) return undefined;
    store.replaceCardHash(v1, v2);
    this.o.log.info({ subject: old.subject }, 'card hash upgraded from release 1 on read');
    return store.getSubject(old.subject);
  }

  /** Whether `pin` is this subject's PIN. A right PIN against a release 1 hash re-hashes it. */
  async pinMatches(subject: StoredSubject, pin: string): Promise<boolean> {
    const stored = subject.pinHash;
    if (!stored) return false;
    const result = await checkPin(this.o.pepper, pin, stored);
    if (result === 'unrecognised') {
      // Not a hash this release tests (garbage, or release 1 made with other parameters): the
      // PIN cannot work until it is enrolled again, so say so instead of a silent "wrong PIN".
      this.o.log.warn({ subject: subject.subject }, 'stored PIN hash is not in a form this release checks; enrol the PIN again');
      return false;
    }
    if (result === 'match-legacy' && !this.closed) {
      this.o.store.replacePinHash(subject.subject, stored, await hashPinAsync(this.o.pepper, pin));
      this.o.log.info({ subject: subject.subject }, 'PIN hash upgraded from release 1 on a right PIN');
    }
    return result === 'match' || result === 'match-legacy';
  }

  /** Starts replacing every release 1 card hash in the store, one at a time, in the background. */
  startUpgrade(): void {
    this.upgrading = this.upgradeStoredCardHashes().catch((err: unknown) => {
      this.o.log.error({ err }, 'card hash upgrade stopped');
      return 0;
    });
  }

  /** Replaces every release 1 card hash in the store by its v2 form; returns how many. */
  async upgradeStoredCardHashes(): Promise<number> {
    const legacy = this.o.store.cardHashes().filter(isLegacyCardHash);
    let upgraded = 0;
    for (const v1 of legacy) {
      const v2 = await upgradeCardHash(v1);
      if (this.closed) break;
      if (this.o.store.replaceCardHash(v1, v2)) upgraded++;
    }
    if (legacy.length) this.o.log.info({ upgraded, found: legacy.length }, 'release 1 card hashes upgraded to v2');
    return upgraded;
  }

  /** No more store writes; resolves once an upgrade under way has stopped (before the store closes). */
  async close(): Promise<void> {
    this.closed = true;
    await this.upgrading;
  }
}
