import type { DeviceStore } from './store.js';
import type { Policy } from './policy.js';

/*
 * Wrong PINs are limited per card holder (the PIN is the person's, so their cards share one
 * count): after policy.pinLockout.attempts wrong PINs within windowMs, the holder's card + PIN
 * path is locked for lockMs. Without it a stolen card's 4-digit PIN falls to 10,000 tries at the
 * keypad. The count lives in the device store's settings, so a restart (or pulling the plug)
 * does not hand out fresh attempts; wall-clock times, since monotonic time restarts with the process.
 */

interface Attempts {
  /** Wall times of the wrong PINs still inside the window. */
  wrong: number[];
  /** Wall time until which the PIN path is locked; 0 when it is not. */
  lockedUntil: number;
}

export class PinLockout {
  constructor(
    private readonly store: Pick<DeviceStore, 'getSetting' | 'setSetting'>,
    private readonly policy: () => Policy,
    private readonly now: () => number = Date.now,
  ) {}

  /** True while the subject's PIN path is locked. */
  locked(subject: string): boolean {
    return this.read(subject).lockedUntil > this.now();
  }

  /** Counts a wrong PIN; true when this one locked the PIN path. */
  wrongPin(subject: string): boolean {
    const { attempts, windowMs, lockMs } = this.policy().pinLockout;
    const now = this.now();
    const wrong = [...this.read(subject).wrong.filter((t) => now - t < windowMs), now];
    const lock = wrong.length >= attempts;
    // A lock starts a fresh count: after it ends, the holder has the full number of attempts again.
    this.write(subject, lock ? { wrong: [], lockedUntil: now + lockMs } : { wrong, lockedUntil: 0 });
    return lock;
  }

  /** A right PIN clears the count. */
  rightPin(subject: string): void {
    const a = this.read(subject);
    if (a.wrong.length > 0 || a.lockedUntil > 0) this.write(subject, { wrong: [], lockedUntil: 0 });
  }

  private key(subject: string): string {
    return `pin-attempts:${subject}`;
  }

  private read(subject: string): Attempts {
    const raw = this.store.getSetting(this.key(subject));
    if (!raw) return { wrong: [], lockedUntil: 0 };
    try {
      const a = JSON.parse(raw) as Partial<Attempts>;
      return { wrong: Array.isArray(a.wrong) ? a.wrong.filter((t) => typeof t === 'number') : [], lockedUntil: typeof a.lockedUntil === 'number' ? a.lockedUntil : 0 };
    } catch {
      // Only this module writes the entry; a damaged one (a torn disk write) starts a fresh count.
      return { wrong: [], lockedUntil: 0 };
    }
  }

  private write(subject: string, a: Attempts): void {
    this.store.setSetting(this.key(subject), JSON.stringify(a));
  }
}
