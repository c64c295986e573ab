import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Where the terminal's card pepper comes from. Never the SQLite file or the JSON config: with the
 * hashes, the pepper is what turns a stolen disk into card numbers and PINs. On an installed
 * terminal it is a systemd credential (`LoadCredentialEncrypted=card-pepper:…` in
 * clockface-device.service): install.sh encrypts it with `systemd-creds` (sealed to the TPM where
 * the board has one) and systemd decrypts it into `$CREDENTIALS_DIRECTORY/card-pepper`, a
 * private in-memory folder only this unit can read. A plain file named by `keys.cardPepper` in
 * the config is the fallback for development and the demo, which run without systemd.
 */
export const CARD_PEPPER_CREDENTIAL = 'card-pepper';

export type CardPepperErrorCode = 'card-pepper.missing' | 'card-pepper.malformed';

export class CardPepperError extends Error {
  override readonly name = 'CardPepperError';
  constructor(
    readonly code: CardPepperErrorCode,
    message: string,
  ) {
    super(`${code}: ${message}`);
  }
}

export interface CardPepper {
  pepper: Buffer;
  /** Where it was read from (logged at start; the value never is). */
  source: 'systemd-credential' | 'file';
  path: string;
}

/**
 * The systemd credential when the service was given one (`credentialsDir` is
 * `$CREDENTIALS_DIRECTORY`), else the fallback file; either holds 32 bytes in base64.
 */
export function loadCardPepper(o: { credentialsDir: string | undefined; fallbackFile: string | undefined }): CardPepper {
  const candidates: Array<Omit<CardPepper, 'pepper'>> = [];
  if (o.credentialsDir) candidates.push({ source: 'systemd-credential', path: join(o.credentialsDir, CARD_PEPPER_CREDENTIAL) });
  if (o.fallbackFile) candidates.push({ source: 'file', path: o.fallbackFile });
  for (const c of candidates) {
    let text: string;
    try {
      text = readFileSync(c.path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw err;
    }
    const pepper = Buffer.from(text.trim(), 'base64');
    if (pepper.length < 16) throw new CardPepperError('card-pepper.malformed', `${c.path} must hold at least 16 bytes in base64`);
    return { ...c, pepper };
  }
  const looked = candidates.map((c) => c.path).join(', ') || 'nowhere (no credentials directory, no keys.cardPepper)';
  throw new CardPepperError(
    'card-pepper.missing',
    `no card pepper: looked in ${looked}. An installed terminal gets it as the systemd credential ${CARD_PEPPER_CREDENTIAL} (install.sh encrypts it); for development name a file in keys.cardPepper`,
  );
}
