import type { Logger } from 'pino';
import type { DeviceStore, StoredTemplate } from './store.js';
import type { FaceEngine } from './face-engine.js';
import type { CommandBody } from './link.js';
import { Policy } from './policy.js';
import { upgradeCardHash } from '../protocol/index.js';

/** The current policy, persisted in the store so a restart keeps what the cloud pushed. */
export class PolicyHolder {
  private current: Policy;
  /** Why a policy saved by an older release was refused at start (the service logs it), or null. */
  readonly savedRefused: string | null = null;
  constructor(
    private readonly store: DeviceStore,
    initial: Policy,
  ) {
    const saved = store.getSetting('policy');
    const parsed = saved ? Policy.safeParse(JSON.parse(saved)) : null;
    // A policy saved by an older release may break a rule this one adds (e.g. group keys that
    // are names, not opaque ids): start on the config file's policy, not in a crash loop, and
    // drop the saved one so the free text goes with it; the cloud's next config-update replaces it.
    if (parsed && !parsed.success) {
      this.savedRefused = issuesText(parsed.error);
      store.setSetting('policy', JSON.stringify(initial));
    }
    this.current = parsed?.success ? parsed.data : initial;
  }
  get(): Policy {
    return this.current;
  }
  /** Validates first: a bad policy is refused whole and the old one stays. */
  replace(raw: unknown): void {
    const parsed = Policy.safeParse(raw);
    if (!parsed.success) {
      throw new Error(`policy refused: ${issuesText(parsed.error)}`);
    }
    this.store.setSetting('policy', JSON.stringify(parsed.data));
    this.current = parsed.data;
  }
}

/** Each issue as "path: why"; zod's messages here never carry the refused value. */
function issuesText(error: { issues: ReadonlyArray<{ path: PropertyKey[]; message: string }> }): string {
  return error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
}

export interface CommandDeps {
  store: DeviceStore;
  face: FaceEngine | null;
  policy: PolicyHolder;
  unlock: (pulseMs: number | undefined) => void;
  log: Logger;
}

/** Applies a command that the link has already verified (signature, tenant, expiry, replay). */
export function createCommandHandler(deps: CommandDeps): (cmd: CommandBody) => Promise<void> {
  return async (cmd) => {
    switch (cmd.type) {
      case 'enroll-subject':
      case 'update-subject': {
        const r = cmd.record;
        let templates: StoredTemplate[] | null = null;
        if (r.faceConsent) {
          const model = deps.face?.model;
          templates = r.templates
            .filter((t) => t.model === model)
            .map((t) => {
              const bytes = Buffer.from(t.vector, 'base64');
              return { model: t.model, vector: new Float32Array(new Uint8Array(bytes).buffer, 0, t.dims) };
            });
          // Photos are re-computed here with the terminal's own model, then forgotten.
          if (deps.face) {
            for (const photo of r.referencePhotos) {
              templates.push({ model: deps.face.model, vector: await deps.face.templateFromPhoto(Buffer.from(photo, 'base64')) });
            }
          }
          if (r.referencePhotos.length + r.templates.length > 0 && templates.length === 0) {
            throw new Error(`no template for this terminal's model (${model ?? 'no face engine'})`);
          }
          if (cmd.type === 'update-subject' && r.templates.length + r.referencePhotos.length === 0) templates = null;
        }
        // A release 1 cloud (or record) sends bare HMAC card hashes: stored as v2 from the start.
        const cardHashes = await Promise.all(r.cardHashes.map(upgradeCardHash));
        deps.store.upsertSubject(
          { subject: r.subject, cardHashes, pinHash: r.pinHash, faceConsent: r.faceConsent, accessGroups: r.accessGroups, suspended: false },
          templates,
        );
        return;
      }
      case 'remove-subject':
        deps.store.removeSubject(cmd.subject);
        return;
      case 'erase-subject':
        deps.store.removeSubject(cmd.subject);
        deps.store.dropPhotosOf(cmd.subject);
        return;
      case 'config-update': {
        if (cmd.config.policy === undefined) throw new Error('config-update carries no policy');
        deps.policy.replace(cmd.config.policy);
        return;
      }
      case 'remote-unlock':
        deps.unlock(cmd.pulseMs ?? undefined);
        return;
      case 'reenroll-campaign': {
        const n = deps.store.dropTemplatesNotOfModel(cmd.model, cmd.subjects);
        deps.log.info({ model: cmd.model, subjects: n }, 're-enroll campaign: old-model templates dropped');
        return;
      }
      case 'revocation-list': {
        const prev = Number(JSON.parse(deps.store.getSetting('revocations') ?? '{"version":-1}').version);
        if (cmd.listVersion <= prev) throw new Error(`revocation list version ${cmd.listVersion} is not newer than ${prev}`);
        deps.store.setSetting('revocations', JSON.stringify({ version: cmd.listVersion, serials: cmd.serials }));
        return;
      }
    }
  };
}
