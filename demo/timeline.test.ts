import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Timeline } from './timeline.js';

/** The demo's verdict: exit 0 only for a complete day in which every step passed. */
const work = mkdtempSync(join(tmpdir(), 'cf-timeline-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

function timeline(expectedSteps: number) {
  let text = '';
  const t = new Timeline(expectedSteps, { write: (s: string) => ((text += s), true) });
  return { t, printed: () => text };
}

const pass = (t: Timeline, name: string) => t.step(name, 'yes', async () => 'yes');

describe('the demo timeline', () => {
  it('a complete day with every step passed is a success', async () => {
    const { t } = timeline(2);
    await pass(t, 'one');
    await pass(t, 'two');
    expect(t.allOk).toBe(true);
    expect(t.summaryTable()).toContain('2 of 2 expected outcomes happened.');
  });

  it('a throw outside any step fails the run even though every step that ran passed', async () => {
    const { t, printed } = timeline(3);
    await pass(t, 'one');
    await pass(t, 'two');
    t.fail('gave up waiting for a punch');
    expect(t.allOk).toBe(false);
    expect(printed()).toContain('stopped: gave up waiting for a punch');
    expect(t.summaryTable()).toContain('2 of 3 expected outcomes happened.');
    expect(t.summaryTable()).toContain('stopped after 2 of 3 steps: gave up waiting for a punch');
    const file = join(work, 'summary.json');
    t.writeJson(file);
    expect(JSON.parse(readFileSync(file, 'utf8'))).toMatchObject({ ok: false, expectedSteps: 3, failure: 'gave up waiting for a punch' });
  });

  it('fewer steps than a day has is a failure, even without a throw', async () => {
    const { t } = timeline(3);
    await pass(t, 'one');
    expect(t.allOk).toBe(false);
    expect(t.summaryTable()).toContain('only 1 of 3 steps ran');
  });

  it('a step that throws is a failed step and the run goes on', async () => {
    const { t } = timeline(2);
    expect(await t.step('broken', 'yes', () => Promise.reject(new Error('no cloud')))).toBe(false);
    await pass(t, 'two');
    expect(t.outcomes.map((o) => o.actual)).toEqual(['error: no cloud', 'yes']);
    expect(t.allOk).toBe(false);
  });

  it('DAY_STEPS in demo/main.ts is the number of steps its day() runs', () => {
    const source = readFileSync(join(import.meta.dirname, 'main.ts'), 'utf8');
    const declared = Number(/export const DAY_STEPS = (\d+);/.exec(source)?.[1]);
    const day = source.slice(source.indexOf('async function day('));
    expect(declared).toBe(day.match(/await t\.step\(/g)?.length);
  });
});
