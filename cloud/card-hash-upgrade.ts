import type { Logger } from 'pino';
import { isLegacyCardHash, upgradeCardHash } from '../protocol/index.js';
import type { CloudService } from './service.js';

/**
 * Release 1 stored subjects' card hashes as the bare HMAC, which a copy of the cloud's database
 * and the tenant keys (where the pepper lives) turn back into badge numbers within hours. A v2
 * hash is the scrypt of the release 1 hash, so the cloud replaces them itself, without anyone's
 * badge: one subject at a time in the background after start, scrypt off the event loop, each
 * row only if it is still what was read (an enrolment or erasure meanwhile wins). Terminals need
 * no new command: they upgrade what they hold themselves (device/credential-check.ts).
 */
export class CardHashUpgrade {
  private stopped = false;
  private running: Promise<number> = Promise.resolve(0);

  constructor(
    private readonly service: CloudService,
    private readonly log: Logger,
  ) {}

  start(): void {
    this.running = this.run().catch((err: unknown) => {
      this.log.error({ err }, 'card hash upgrade stopped');
      return 0;
    });
  }

  /** Resolves with how many subjects were upgraded. */
  done(): Promise<number> {
    return this.running;
  }

  /** Ends the upgrade after the row in hand (before the database closes). */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.running;
  }

  private async run(): Promise<number> {
    const rows = (this.service.db.prepare('SELECT tenant, subject, card_hashes FROM subjects').all() as Row[]).filter((r) =>
      (JSON.parse(r.card_hashes) as string[]).some(isLegacyCardHash),
    );
    let upgraded = 0;
    for (const r of rows) {
      const hashes = await Promise.all((JSON.parse(r.card_hashes) as string[]).map(upgradeCardHash));
      if (this.stopped) break;
      const changed = this.service.db
        .prepare('UPDATE subjects SET card_hashes = ? WHERE tenant = ? AND subject = ? AND card_hashes = ?')
        .run(JSON.stringify(hashes), r.tenant, r.subject, r.card_hashes).changes;
      upgraded += changed;
    }
    if (rows.length) this.log.info({ upgraded, found: rows.length }, 'release 1 card hashes upgraded to v2');
    return upgraded;
  }
}

interface Row {
  tenant: string;
  subject: string;
  card_hashes: string;
}
