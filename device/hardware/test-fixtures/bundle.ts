import { mkdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'rolldown';

/**
 * Node 20 cannot run TypeScript, so tests that need a real child process running our code
 * bundle a fixture (our modules only; packages stay external) into node_modules/.cache, where
 * Node resolves the packages from the project's node_modules.
 */
const here = dirname(fileURLToPath(import.meta.url));

export interface Bundled {
  file: string;
  remove(): void;
}

export async function bundleFixture(name: string): Promise<Bundled> {
  const dir = join(here, '..', '..', '..', 'node_modules', '.cache', `clockface-hw-${process.pid}-${name}`);
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${name}.mjs`);
  await build({
    input: join(here, `${name}.ts`),
    platform: 'node',
    external: (id) => !id.startsWith('.') && !id.startsWith('/'),
    output: { file, format: 'esm' },
    logLevel: 'silent',
  });
  return { file, remove: () => rmSync(dir, { recursive: true, force: true }) };
}
