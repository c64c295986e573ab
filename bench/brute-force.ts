import { createHmac, randomBytes, scryptSync } from 'node:crypto';
import { CARD_SCRYPT, PIN_SCRYPT, cardHash, hashPin, legacyCardHash, scryptMemoryBytes } from '../protocol/index.js';
import { round } from './measure.js';

/**
 * What it costs to get card numbers and PINs back from a stolen terminal disk, offline: the
 * CPU-seconds of one hash (measured here, process CPU time, one core) times the size of the
 * space to enumerate. "Pepper on the disk": the attacker has the pepper (a board without a TPM2:
 * the host key that unseals the credential is on the same disk), so each guess costs one hash.
 * "Pepper sealed away" (TPM2, or a disk taken without its board's TPM): every guess must first
 * guess the 32-byte pepper, 2^256 of them, so the figure is given as a power of ten.
 */
const CARD_SPACE = 2 ** 32;
const PIN_SPACES = { '4': 1e4, '5': 1e5, '6': 1e6 } as const;

/** CPU-seconds per call of fn, from process CPU time over `n` calls (after one warm-up call). */
function cpuSecondsPer(n: number, fn: (i: number) => void): number {
  fn(-1);
  const start = process.cpuUsage();
  for (let i = 0; i < n; i++) fn(i);
  const used = process.cpuUsage(start);
  return (used.user + used.system) / 1e6 / n;
}

const years = (s: number) => s / (365.25 * 86400);

function space(perHash: number, size: number) {
  return { cpuSeconds: round(perHash * size, 1), cpuHours: round((perHash * size) / 3600, 2), cpuYears: round(years(perHash * size), 3) };
}

export function bruteForce(): Record<string, unknown> {
  const pepper = randomBytes(32);
  const hmac = cpuSecondsPer(100_000, (i) => legacyCardHash(pepper, 4_000_000_000 + i));
  const cardV2 = cpuSecondsPer(12, (i) => cardHash(pepper, 4_000_000_000 + i));
  const release1Pin = cpuSecondsPer(12, (i) => scryptSync(String(2000 + i), pepper.subarray(0, 16), 32, { N: 16384, r: 8, p: 1 }));
  // Release 1's terminal tested a PIN at whatever cost its stored hash named (any N ≥ 1024, any r).
  const release1CheapPin = cpuSecondsPer(2000, (i) => scryptSync(String(2000 + i), pepper.subarray(0, 16), 32, { N: 1024, r: 1, p: 1 }));
  const pinV2 = cpuSecondsPer(8, (i) => hashPin(pepper, String(2000 + i)));
  // With the pepper sealed away a guess needs the pepper first: 2^256 HMACs before any scrypt.
  const sealedLog10 = (perHash: number) => round(256 * Math.log10(2) + Math.log10(hmac + perHash), 1);
  const pins = (perHash: number) => Object.fromEntries(Object.entries(PIN_SPACES).map(([digits, n]) => [`${digits}digits`, space(perHash, n)]));
  return {
    perHashCpuMs: {
      cardRelease1Hmac: round(hmac * 1000, 5),
      cardV2: round(cardV2 * 1000, 2),
      pinRelease1: round(release1Pin * 1000, 2),
      pinRelease1AtN1024r1: round(release1CheapPin * 1000, 3),
      pinV2: round(pinV2 * 1000, 2),
    },
    memoryPerHashMiB: { cardV2: scryptMemoryBytes(CARD_SCRYPT) / 2 ** 20, pinV2: scryptMemoryBytes(PIN_SCRYPT) / 2 ** 20 },
    params: { card: CARD_SCRYPT, pin: PIN_SCRYPT },
    pepperOnTheDisk: {
      cardSpace32bit: { release1: space(hmac, CARD_SPACE), v2: space(cardV2, CARD_SPACE) },
      pinRelease1: pins(release1Pin),
      pinRelease1HandMadeCheapHash: pins(release1CheapPin),
      pinV2: pins(pinV2),
    },
    pepperSealedAway: {
      note: 'the 32-byte pepper must be guessed first (2^256); log10 of the CPU-seconds for one card or PIN',
      cardV2CpuSecondsLog10: sealedLog10(cardV2),
      pinV2CpuSecondsLog10: sealedLog10(pinV2),
    },
  };
}

/** CPU-ms of one card hash at each scrypt cost (r = 8), to set against the badge → relay headroom. */
export function cardCostSweep(): Array<{ N: number; memoryMiB: number; cpuMs: number }> {
  const v1 = createHmac('sha256', randomBytes(32)).update('card:1').digest();
  return [12, 13, 14, 15, 16].map((log2) => {
    const cost = { N: 2 ** log2, r: 8, p: 1 };
    const per = cpuSecondsPer(log2 >= 15 ? 4 : 8, () => scryptSync(v1, 'clockface/card/v2', 32, { ...cost, maxmem: 2 * scryptMemoryBytes(cost) }));
    return { N: cost.N, memoryMiB: scryptMemoryBytes(cost) / 2 ** 20, cpuMs: round(per * 1000, 2) };
  });
}
