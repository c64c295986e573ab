import { FaceConfig } from './face/engine.js';
import { z } from 'zod';
import { LogConfig } from '../common/config.js';
import { HardwareConfig } from './hardware/index.js';
import { Policy } from './policy.js';
import { FunctionKeysConfig } from './function-keys.js';

const idText = z.string().regex(/^[a-z0-9]+(-[a-z0-9]+)*$/, 'ids are lowercase letters, digits and inner dashes');

/** `clockface device --config FILE`; relative paths resolve against the file's folder. */
export const DeviceConfig = z
  .object({
    tenant: idText,
    device: idText,
    mode: z.enum(['access', 'timekeeping', 'both']).default('access'),
    dataDir: z.string().min(1),
    mqtt: z
      .object({
        url: z.string().regex(/^mqtts:\/\//, 'the link must use TLS (mqtts://)'),
        ca: z.string().default('ca.crt'),
        cert: z.string().default('device.crt'),
        key: z.string().default('device.key'),
        heartbeatMs: z.number().int().min(1000).default(30_000),
      })
      .strict(),
    keys: z
      .object({
        signing: z.string().default('device-signing.key'),
        sealing: z.string().default('device-sealing.key'),
        cloudSealingPublic: z.string().default('cloud-sealing.pub'),
        adminSigningPublic: z.string().default('admin-signing.pub'),
        /** Development fallback only: an installed terminal reads the pepper from the systemd credential `card-pepper` (device/card-pepper.ts). */
        cardPepper: z.string().default('card-pepper.key'),
      })
      .strict()
      .prefault({}),
    hardware: HardwareConfig.prefault({}),
    /** Face engine section (issue 3); the terminal passes it through to the engine. */
    face: FaceConfig.prefault({}),
    policy: Policy.prefault({}),
    functionKeys: FunctionKeysConfig,
    /** Face-in-view trigger (face-only / card-or-face): how often to look, and the pause after a punch. 0 turns it off. */
    faceTrigger: z
      .object({ scanMs: z.number().int().min(0).default(400), cooldownMs: z.number().int().min(0).default(3000) })
      .strict()
      .prefault({}),
    outbox: z
      .object({ maxEvents: z.number().int().min(10).default(50_000), maxBytes: z.number().int().min(100_000).default(512 * 1024 * 1024) })
      .strict()
      .prefault({}),
    /**
     * How long a deleted copy may stay on the terminal's disk, in seconds: an event after its
     * cloud receipt, a shed photo, the template and card hashes of a subject removed, erased,
     * withdrawn from face consent or ended with the contract. Within it the store is rewritten
     * (VACUUM) and its WAL truncated (device/README.md "How long a copy lives").
     */
    wipeWithinSeconds: z.number().int().min(4).max(86_400).default(60),
    ops: z.object({ port: z.number().int().min(0).max(65535).default(9464) }).strict().prefault({}),
    log: LogConfig,
  })
  .strict();
export type DeviceConfig = z.infer<typeof DeviceConfig>;
