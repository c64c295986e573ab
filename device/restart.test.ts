import { afterAll, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { castFromSamples, emptyFrame } from '../demo/people.js';
import { DEFAULT_THRESHOLDS } from './face/scores.js';
import { pulses, readRecordFile } from './hardware/index.js';
import type { PunchBody } from './events.js';
import { startTestBroker } from './test-support/broker.js';
import { connectCloudSide, enrollCommand } from './test-support/cloud-side.js';
import { spawnTerminal, until, writeTerminalBundle, type TerminalProcess } from './test-support/terminal-process.js';
import { opaqueGroup, opaqueSubject } from '../protocol/fixtures.js';

/*
 * The terminal as a real process (its own real face engine, WASM) on the mTLS test broker:
 * a person enrolled by a signed command is recognised by face after the process restarted
 * (templates on disk, index rebuilt at start), on a unit in `both` mode, which opens the door
 * and clocks the person in with the same punch.
 */
const TENANT = 'acme';
const DEVICE = 'door-lobby-2';
const dir = mkdtempSync(join(tmpdir(), 'cf-restart-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('a terminal process restarted after an enroll command', () => {
  it('recognises the enrolled face after the restart; in both mode the grant opens the door and punches in, a repeat only opens', async () => {
    const broker = await startTestBroker(TENANT, DEVICE);
    const bundle = writeTerminalBundle(join(dir, 'bundle'), { ca: broker.ca.certPem, cert: broker.device.certPem, key: broker.device.keyPem });
    const cloud = await connectCloudSide(broker, { tenant: TENANT, device: DEVICE, ...bundle });
    const [anna] = await castFromSamples(1);
    const camDir = join(dir, 'camera');
    mkdirSync(camDir);
    writeFileSync(join(camDir, 'frame.jpg'), await emptyFrame()); // nobody in view yet
    const config = {
      tenant: TENANT,
      device: DEVICE,
      mode: 'both',
      dataDir: 'data',
      mqtt: { url: broker.url },
      hardware: {
        camera: { driver: 'replay', replayPath: camDir, fps: 10 },
        gpio: { driver: 'simulator', recordFile: 'gpio.jsonl' },
        pins: { relay: 17, greenLed: 22, redLed: 23, buzzer: 24 },
        relay: { pulseMs: 200, mode: 'fail-secure' },
      },
      policy: { credentials: 'face-only', timekeeping: { action: 'auto', debounceMs: 60_000 }, access: { door: 'lobby', pulseMs: 200, groups: { [opaqueGroup('staff')]: 'always' } } },
      faceTrigger: { scanMs: 200, cooldownMs: 500 },
      ops: { port: 0 },
    };
    let terminal: TerminalProcess | undefined;
    try {
      terminal = await spawnTerminal(bundle, config);
      await until(() => terminal!.log().includes('link connected'), 'the first process on the link');
      await cloud.command(enrollCommand(bundle.pepper, opaqueSubject('s-anna'), '1001', { photo: anna!.reference }));
      terminal.proc.kill('SIGTERM');
      expect(await terminal.exited).toBe(0);
      terminal.remove();

      // On disk between the two processes: her template, of the engine's model.
      const store = bundle.openStore();
      const saved = store.templatesOf(opaqueSubject('s-anna'));
      store.close();
      expect(saved).toHaveLength(1);

      writeFileSync(join(camDir, 'frame.jpg'), anna!.frame); // she walks up to the restarted unit
      terminal = await spawnTerminal(bundle, config);
      const second = terminal.proc.pid;
      expect(terminal.log()).toContain('face engine ready'); // the real engine, not a face-less fallback
      const punches = () => cloud.received.filter((e): e is PunchBody => e.type === 'punch' && e.subject === opaqueSubject('s-anna'));
      await until(() => punches().length >= 2, 'two face punches from the restarted process');
      const [first, repeat] = punches();
      expect(saved[0]!.model).toBe(first!.model);
      expect(first).toMatchObject({ credential: 'face', decision: 'granted', action: 'in', door: 'lobby' });
      expect(first!.scores.similarity).toBeGreaterThanOrEqual(DEFAULT_THRESHOLDS.identify); // 1:N over the rebuilt index
      // Within the debounce window: the door opens again, recorded as access only (no second "in").
      expect(repeat).toMatchObject({ credential: 'face', decision: 'granted', action: 'access', door: 'lobby' });
      const relay = () => pulses(readRecordFile(join(bundle.dir, 'gpio.jsonl')).filter((r) => r.pid === second), 17, 1);
      await until(() => relay().filter((p) => !Number.isNaN(p.ms)).length >= 2, 'two relay pulses from the restarted process');
      terminal.proc.kill('SIGTERM');
      expect(await terminal.exited).toBe(0);
    } finally {
      terminal?.proc.kill('SIGKILL');
      terminal?.remove();
      await cloud.close();
      await broker.close();
    }
  }, 180_000);
});
