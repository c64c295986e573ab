import { createHash } from 'node:crypto';

/**
 * The number a Wiegand frame carries for a grant. A card grant sends the card number just read
 * (the panel knows that card). A face-only grant has no card: the terminal keeps card numbers
 * only as keyed hashes, so it cannot send the person's card. It sends instead the subject's
 * "face credential": 32 bits of SHA-256 over the opaque subject id, a stable pseudonymous
 * number the integrator enrolls in the panel as that person's second credential
 * (docs/facilities-guide.md §2). It reveals nothing the door topic does not already carry.
 * In a 26-bit frame only its low 24 bits travel (facility code from config, or bits 23-16):
 * prefer 34-bit frames at sites with many face users, where 24 bits start to collide.
 */
export function faceCredentialNumber(subject: string): bigint {
  return BigInt(createHash('sha256').update(`clockface/wiegand-face/v1\0${subject}`).digest().readUInt32BE(0));
}
