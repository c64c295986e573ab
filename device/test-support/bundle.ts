import { mkdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'rolldown';

/** Node 20 cannot run TypeScript: bundles a test child (our code only) next to node_modules. */
const here = dirname(fileURLToPath(import.meta.url));

export async function bundleChild(name: string): Promise<{ file: string; remove(): void }> {
  const dir = join(here, '..', '..', 'node_modules', '.cache', `clockface-device-${process.pid}-${name}`);
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
