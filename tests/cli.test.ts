import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const CLI = 'dist/cli/main.js';

async function clockface(...args: string[]) {
  try {
    const { stdout, stderr } = await run(process.execPath, [CLI, ...args]);
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('the clockface command (built JavaScript, no TypeScript loader)', () => {
  beforeAll(() => {
    if (!existsSync(CLI)) throw new Error('run `npm run build` first (npm test does)');
  });

  it('lists every role in --help', async () => {
    const { code, stdout } = await clockface('--help');
    expect(code).toBe(0);
    for (const role of ['device', 'gateway', 'cloud', 'provision', 'face', 'hw', 'demo', 'version']) expect(stdout).toMatch(new RegExp(`^  ${role} `, 'm'));
  });

  it('prints the package and Node versions', async () => {
    const { code, stdout } = await clockface('version', '--json');
    expect(code).toBe(0);
    const info = JSON.parse(stdout);
    expect(info.clockface).toBe(process.env.npm_package_version ?? info.clockface);
    expect(info.clockface).toMatch(/^\d+\.\d+\.\d+/);
    expect(info.node).toBe(process.version);
    expect(info.face).toEqual({ backend: expect.stringMatching(/^(wasm|tensorflow)$/), embeddingModel: 'faceapi-resnet128-v1', detectorModel: 'faceapi-tinyyolo416-v1' });
    const text = await clockface('version');
    expect(text.stdout).toMatch(/^face (wasm|tensorflow) backend, embedding faceapi-resnet128-v1, detector faceapi-tinyyolo416-v1$/m);
  });

  it('says so when the face models cannot be loaded, instead of crashing', async () => {
    const env = { ...process.env, CLOCKFACE_FACE_MODEL_DIR: '/nonexistent/clockface-models' };
    const { stdout } = await run(process.execPath, [CLI, 'version', '--json'], { env });
    expect(JSON.parse(stdout).face.error).toMatch(/^models failed to load: .*nonexistent/);
    const text = await run(process.execPath, [CLI, 'version'], { env });
    expect(text.stdout).toMatch(/^face models failed to load: /m);
  });

  it('refuses an unknown role with the usage', async () => {
    const { code, stderr } = await clockface('teleport');
    expect(code).toBe(2);
    expect(stderr).toContain('unknown role "teleport"');
  });
});

