import { z } from 'zod';
import { HardwareConfig } from '../../protocol/hardware-config.js';

// The schema is contract with provisioning, so it lives in protocol/; the drivers here read it.
export * from '../../protocol/hardware-config.js';

/** The file layout `clockface hw` reads: the hardware section, plus the shared log section. */
export const HwToolConfig = z.object({ hardware: HardwareConfig.prefault({}) }).passthrough();

/** Parses a hardware section (e.g. from tests) with every default filled in. */
export function hardwareConfig(input: unknown = {}): HardwareConfig {
  return HardwareConfig.parse(input);
}
