import type { Logger } from '../../common/log.js';
import type { RecheckConfig } from '../config.js';
import type { RecheckEngine } from './engine.js';
import { LocalFaceEngine } from './local.js';
import { RekognitionEngine } from './rekognition.js';

/** Picks the configured engine. */
export function createEngine(config: RecheckConfig, log?: Logger): RecheckEngine {
  if (config.engine === 'rekognition') {
    return new RekognitionEngine({ region: config.region, ...(config.endpoint ? { endpoint: config.endpoint } : {}) });
  }
  if (config.engine === 'local') return new LocalFaceEngine(config.command, log);
  throw new Error('re-check engine "none" has no implementation to create');
}
