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
  /** The face engine's backend and model ids, or why its models did not load. */
  face?: { backend: string; embeddingModel: string; detectorModel: string; backendFallback?: string } | { error: string };
}

export function versionInfo(): VersionInfo {
  return { clockface: packageVersion(), node: process.version, platform: `${process.platform}-${process.arch}` };
}

/** Loads the face models (about 0.4 s) to report what this install would really run. */
async function faceInfo(): Promise<NonNullable<VersionInfo['face']>> {
  try {
    const { loadFaceModels } = await import('../device/face/models.js');
    const m = await loadFaceModels();
    return { backend: m.backend, embeddingModel: m.embeddingModel, detectorModel: m.detectorModel, ...(m.backendFallback ? { backendFallback: m.backendFallback } : {}) };
  } catch (err) {
    return { error: `models failed to load: ${(err as Error).message.split('\n')[0]}` };
  }
}

export async function printVersion(argv: string[]): Promise<number> {
  const info: VersionInfo = { ...versionInfo(), face: await faceInfo() };
  if (argv.includes('--json')) console.log(JSON.stringify(info));
  else {
    const f = info.face!;
    const face = 'error' in f ? `face ${f.error}` : `face ${f.backend} backend, embedding ${f.embeddingModel}, detector ${f.detectorModel}${f.backendFallback ? ` (${f.backendFallback})` : ''}`;
    console.log(`clockface ${info.clockface}\nnode ${info.node} (${info.platform})\n${face}`);
  }
  return 0;
}
