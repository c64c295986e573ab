/**
 * The wire contract between Clockface tiers. Imported by device, gateway, cloud and
 * provisioning; imports none of them.
 */
export * from './errors.js';
export * from './ids.js';
export * from './topics.js';
export * from './canonical.js';
export * from './limits.js';
export * from './schemas.js';
export * from './keys.js';
export * from './replay.js';
export * from './envelope.js';
export * from './credentials.js';
