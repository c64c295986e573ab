// Flat config: typescript-eslint's recommended rules plus the few this project lives by.
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import { tierBoundary } from './scripts/eslint-tier-boundary.js';

const PKI = 'provisioning/pki.ts';

/**
 * The only places a tier's test code reaches into another tier. Tests of the device, gateway
 * and cloud need real certificates from a tenant CA, issued exactly as provisioning issues them
 * for a site: a second CA written for the tests would only check the code against itself.
 * device/wiegand-terminal.test.ts drives the terminal with the shipped "pi-wiegand" hardware
 * profile, so the wiring a bundle gives a terminal is the wiring tested.
 * Adding a line here needs the same kind of reason; production code gets none.
 */
const TEST_EXCEPTIONS = {
  'device/card-pepper.test.ts': [PKI],
  'device/link.test.ts': [PKI],
  'device/main.test.ts': [PKI],
  'device/shutdown.test.ts': [PKI],
  'device/test-support/broker.ts': [PKI],
  'device/wiegand-terminal.test.ts': [PKI, 'provisioning/profiles.ts'],
  'gateway/cloud-trust.test.ts': [PKI],
  'gateway/gateway.test.ts': [PKI],
  'gateway/testing/site-pki.ts': [PKI],
  'gateway/tls-refusals.test.ts': [PKI],
  'cloud/mtls.test.ts': [PKI],
};

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'coverage/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    plugins: { clockface: { rules: { 'tier-boundary': tierBoundary } } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-console': 'off',
      eqeqeq: ['error', 'always'],
      // docs/ARCHITECTURE.md: no tier imports another tier; protocol/ and common/ import none.
      'clockface/tier-boundary': ['error', { root: dirname(fileURLToPath(import.meta.url)), testExceptions: TEST_EXCEPTIONS }],
    },
  },
);
