import { describe, expect, it } from 'vitest';
import { Registry } from './metrics.js';
import { startOpsServer } from './ops-server.js';

describe('metrics and the ops server', () => {
  it('renders Prometheus text and serves /metrics and /health on loopback', async () => {
    const registry = new Registry();
    const punches = registry.counter('clockface_punches_total', 'Punches recorded');
    const depth = registry.gauge('clockface_outbox_depth', 'Events waiting for a receipt');
    const latency = registry.histogram('clockface_decision_seconds', 'Badge to decision', [0.05, 0.1]);
    punches.inc({ decision: 'granted' });
    punches.inc({ decision: 'granted' });
    let queued = 7;
    depth.collect(() => queued);
    latency.observe(0.07);
    let healthy = true;
    const ops = await startOpsServer({ port: 0, registry, health: () => ({ ok: healthy, outbox: queued }) });
    try {
      const text = await (await fetch(`${ops.url}/metrics`)).text();
      expect(text).toContain('# TYPE clockface_punches_total counter');
      expect(text).toContain('clockface_punches_total{decision="granted"} 2');
      expect(text).toContain('clockface_outbox_depth 7');
      expect(text).toContain('clockface_decision_seconds_bucket{le="0.05"} 0');
      expect(text).toContain('clockface_decision_seconds_bucket{le="0.1"} 1');
      expect(text).toContain('clockface_decision_seconds_count 1');
      queued = 9;
      expect(await (await fetch(`${ops.url}/metrics`)).text()).toContain('clockface_outbox_depth 9');
      const ok = await fetch(`${ops.url}/health`);
      expect(ok.status).toBe(200);
      expect(await ok.json()).toEqual({ ok: true, outbox: 9 });
      healthy = false;
      expect((await fetch(`${ops.url}/health`)).status).toBe(503);
      expect((await fetch(`${ops.url}/nope`)).status).toBe(404);
      expect(ops.url).toMatch(/^http:\/\/127\.0\.0\.1:/);
    } finally {
      await ops.close();
    }
  });

  it('refuses registering a metric twice', () => {
    const registry = new Registry();
    registry.counter('x_total', 'x');
    expect(() => registry.gauge('x_total', 'x')).toThrow(/twice/);
  });
});
