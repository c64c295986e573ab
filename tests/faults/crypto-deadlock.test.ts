import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { runs, scaledTimeout } from '../fuzz/seeds.js';

/*
 * On Node 20, a key straight from generateKeyPairSync could deadlock the process the moment it
 * was exported while the garbage collector ran (protocol/keys.ts newPrivateKey has the story):
 * 30,000 seals hung one run in five, and one hung CI for 90 minutes. Sealing is what every
 * punch does, so the check runs the real sealing and key making in a child process with a
 * deadline: a hang is a failure with a message, not a stuck test run. `npm run soak` runs 20x.
 */
const protocolModule = fileURLToPath(new URL('../../dist/protocol/index.js', import.meta.url));
const SEALS = runs(30_000);

const child = `
const { generateKeyPair, newMessageId, sealAndSign } = await import(${JSON.stringify(protocolModule)});
const recipient = generateKeyPair('x25519');
let signer = generateKeyPair('ed25519');
for (let i = 0; i < ${SEALS}; i++) {
  if (i % 100 === 0) signer = generateKeyPair('ed25519');
  const id = newMessageId();
  sealAndSign({ kind: 'event', id, tenant: 'acme', device: 'door-1', seq: i + 1, body: { type: 'alarm', eventId: id },
    signer, recipient: { keyId: recipient.keyId, key: recipient.publicKey } });
}
process.stdout.write('sealed ${SEALS}');
`;

describe('sealing does not deadlock in key handling', () => {
  it(`seals ${SEALS} events and makes a key every 100 within its deadline`, async () => {
    const deadlineMs = scaledTimeout(60_000);
    const proc = spawn(process.execPath, ['--input-type=module', '-e', child], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    proc.stdout.on('data', (d: Buffer) => (out += d));
    proc.stderr.on('data', (d: Buffer) => (out += d));
    const timer = setTimeout(() => proc.kill('SIGKILL'), deadlineMs);
    const code = await new Promise<number | null>((resolve) => proc.on('exit', (c) => resolve(c)));
    clearTimeout(timer);
    expect(code, `the sealing process ${code === null ? `hung past ${deadlineMs} ms (a deadlock) and was killed` : `failed`}: ${out}`).toBe(0);
    expect(out).toBe(`sealed ${SEALS}`);
  }, scaledTimeout(60_000) + 10_000);
});
