import { readFileSync } from 'node:fs';

/** The package's own version, read from package.json next to dist/ or the sources. */
export function packageVersion(): string {
  for (const rel of ['../../package.json', '../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(rel, import.meta.url), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'clockface' && pkg.version) return pkg.version;
    } catch {
      // try the next candidate
    }
  }
  return 'unknown';
}

export interface VersionInfo {
  clockface: string;
  node: string;
  platform: string;
}

export function versionInfo(): VersionInfo {
  return { clockface: packageVersion(), node: process.version, platform: `${process.platform}-${process.arch}` };
}

export async function printVersion(argv: string[]): Promise<number> {
  const info = versionInfo();
  if (argv.includes('--json')) console.log(JSON.stringify(info));
  else console.log(`clockface ${info.clockface}\nnode ${info.node} (${info.platform})`);
  return 0;
}
