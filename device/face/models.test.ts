import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { chooseBackend, faceVersions, type ModuleLoader } from './models.js';

/**
 * The backend choice with tfjs-node resolved from a real folder on disk: a package that throws
 * on load the way a tfjs-node without its libtensorflow does, or no package at all.
 */
const real = createRequire(import.meta.url);
const faceApiDir = dirname(real.resolve('@vladmandic/face-api/package.json'));
const dir = mkdtempSync(join(tmpdir(), 'clockface-tfjs-node-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Everything from the project's node_modules, except @tensorflow/tfjs-node from `from`. */
function loaderWithTfjsNodeFrom(from: string): ModuleLoader {
  const local = createRequire(join(from, 'index.js'));
  const pick = (id: string) => (id === '@tensorflow/tfjs-node' ? local : real);
  return { resolve: (id) => pick(id).resolve(id), load: (id) => pick(id)(id) };
}

describe('face backend choice', () => {
  it('falls back to WASM when tfjs-node is installed but its native library fails to load, and says why', async () => {
    const broken = join(dir, 'broken');
    const pkg = join(broken, 'node_modules/@tensorflow/tfjs-node');
    mkdirSync(pkg, { recursive: true });
    writeFileSync(join(pkg, 'package.json'), JSON.stringify({ name: '@tensorflow/tfjs-node', version: '4.22.0', main: 'index.js' }));
    writeFileSync(join(pkg, 'index.js'), "throw new Error('libtensorflow.so.2: cannot open shared object file: No such file or directory');\n");
    const logged: string[] = [];
    const choice = await chooseBackend(faceApiDir, loaderWithTfjsNodeFrom(broken), (msg, reason) => logged.push(`${msg} | ${reason}`));
    expect(choice.tf.getBackend()).toBe('wasm');
    expect(choice.fallback).toBe('tfjs-node failed to load: libtensorflow.so.2: cannot open shared object file: No such file or directory');
    expect(logged).toHaveLength(1);
    expect(logged[0]).toMatch(/failed to load; using the WASM backend \| tfjs-node failed to load: libtensorflow/);
    // The status record carries the reason, within its 64-character values.
    const versions = faceVersions({ backend: choice.tf.getBackend(), backendFallback: choice.fallback, embeddingModel: 'e', detectorModel: 'd' });
    expect(versions.faceBackend).toBe('wasm');
    expect(versions.faceBackendFallback).toBe(choice.fallback!.slice(0, 64));
  });

  it('uses WASM without a fallback note when tfjs-node is simply not installed', async () => {
    const empty = join(dir, 'empty');
    mkdirSync(empty, { recursive: true });
    const logged: string[] = [];
    const choice = await chooseBackend(faceApiDir, loaderWithTfjsNodeFrom(empty), (msg) => logged.push(msg));
    expect(choice.tf.getBackend()).toBe('wasm');
    expect(choice.fallback).toBeNull();
    expect(logged).toEqual([]);
    expect(faceVersions({ backend: 'wasm', backendFallback: null, embeddingModel: 'e', detectorModel: 'd' })).toEqual({ faceBackend: 'wasm', faceEmbedding: 'e', faceDetector: 'd' });
  });
});
