import { mkdtempSync, mkdirSync, copyFileSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { randomBytes } from 'node:crypto';
import { cardHash, generateKeyPair, privateKeyToPem, rawPublicKey } from '../protocol/index.js';
import { createLogger } from '../common/log.js';
import { DeviceConfig } from '../device/config.js';
import { startDeviceService } from '../device/service.js';
import { StandInFaceEngine } from '../device/test-support/stand-in-face.js';
import { startTestBroker } from '../device/test-support/broker.js';
import type { SimulatedCardReader } from '../device/hardware/index.js';
import { percentile, round } from './measure.js';

/**
 * Badge-to-relay latency through the whole terminal flow: simulated reader (real EM4100 frames
 * through the real parser) → card hash lookup in SQLite → 3-frame burst from the replay camera
 * (real photo) → face engine → decision → punch sealed and committed to the outbox (fsync) →
 * relay on the GPIO simulator. The face engine is the stand-in until device/face lands, so the
 * figure excludes face inference time.
 */
export async function run(): Promise<Record<string, unknown>> {
  const dir = mkdtempSync(join(tmpdir(), 'cf-bench-device-'));
  const broker = await startTestBroker('acme', 'bench-1');
  try {
    const photos = join(process.cwd(), 'node_modules/@vladmandic/face-api/demo');
    const cam = join(dir, 'camera');
    mkdirSync(cam);
    copyFileSync(join(photos, 'sample1.jpg'), join(cam, 'frame.jpg'));
    const pepper = randomBytes(32);
    const signing = generateKeyPair('ed25519');
    const sealing = generateKeyPair('x25519');
    const files: Record<string, string> = {
      'ca.crt': broker.ca.certPem,
      'device.crt': broker.device.certPem,
      'device.key': broker.device.keyPem,
      'device-signing.key': privateKeyToPem(signing),
      'device-sealing.key': privateKeyToPem(sealing),
      'cloud-sealing.pub': rawPublicKey(generateKeyPair('x25519').publicKey).toString('base64'),
      'admin-signing.pub': rawPublicKey(generateKeyPair('ed25519').publicKey).toString('base64'),
      'card-pepper.key': pepper.toString('base64'),
    };
    for (const [n, t] of Object.entries(files)) writeFileSync(join(dir, n), t, { mode: 0o600 });
    const config = DeviceConfig.parse({
      tenant: 'acme',
      device: 'bench-1',
      dataDir: join(dir, 'data'),
      mqtt: { url: broker.url },
      hardware: {
        camera: { driver: 'replay', replayPath: cam, fps: 30 },
        reader: { driver: 'simulator', repeatWindowMs: 0 },
        gpio: { driver: 'simulator' },
        pins: { relay: 17, greenLed: 22, redLed: 23, buzzer: 24 },
        relay: { pulseMs: 100 },
      },
      policy: { credentials: 'card+face', thresholds: { match: 0.8 }, access: { pulseMs: 100, groups: { staff: 'always' } }, burst: { frames: 3 } },
    });
    const face = new StandInFaceEngine();
    const service = await startDeviceService({ config, baseDir: dir, log: createLogger({ name: 'bench', level: 'silent' }), face, opsPort: null });
    const photo = readFileSync(join(cam, 'frame.jpg'));
    service.store.upsertSubject(
      { subject: 's-bench', cardHashes: [cardHash(pepper, '1001')], pinHash: null, faceConsent: true, accessGroups: ['staff'], suspended: false },
      [{ model: face.model, vector: await face.templateFromPhoto(photo) }],
    );
    const reader = service.hardware.reader as SimulatedCardReader;
    const samples: number[] = [];
    let granted = 0;
    for (let i = 0; i < 40; i++) {
      const t0 = performance.now();
      const opened = new Promise<number>((resolve) => {
        const on = ({ open }: { open: boolean }) => {
          if (!open) return;
          service.hardware.outputs.off('relay', on);
          resolve(performance.now());
        };
        service.hardware.outputs.on('relay', on);
      });
      const punched = new Promise<void>((resolve) => service.terminal.once('punch', (p) => resolve(void (granted += p.decision === 'granted' ? 1 : 0))));
      reader.present('00000003E9'); // card number 1001
      const t1 = await opened;
      await punched;
      if (i >= 5) samples.push(t1 - t0); // first few warm the caches
      await new Promise((r) => setTimeout(r, 150)); // let the pulse end
    }
    await service.stop();
    samples.sort((a, b) => a - b);
    return {
      badgeToRelayMs: { median: round(percentile(samples, 50)), p95: round(percentile(samples, 95)), n: samples.length },
      granted,
      faceEngine: face.model,
      burstFrames: 3,
      targetMedianMs: 150,
      note: 'stand-in face engine: excludes face inference; re-measure when device/face is merged',
    };
  } finally {
    await broker.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
