import { describe, expect, it } from 'vitest';
import { Policy, checkAccess } from './policy.js';
import { opaqueGroup } from '../protocol/fixtures.js';

const policy = Policy.parse({
  access: {
    groups: { [opaqueGroup('staff')]: 'office', [opaqueGroup('security')]: 'always' },
    schedules: { office: [{ days: [1, 2, 3, 4, 5], from: '07:00', to: '19:00' }] },
    holidays: ['2026-12-25'],
  },
});

describe('checkAccess', () => {
  it('applies groups, weekly schedules and holidays', () => {
    const mondayNoon = new Date(2026, 10, 23, 12, 0);
    expect(checkAccess(policy, [opaqueGroup('staff')], mondayNoon)).toBeNull();
    expect(checkAccess(policy, [opaqueGroup('visitors')], mondayNoon)).toBe('not-in-access-group');
    expect(checkAccess(policy, [opaqueGroup('staff')], new Date(2026, 10, 23, 20, 0))).toBe('outside-schedule');
    expect(checkAccess(policy, [opaqueGroup('staff')], new Date(2026, 10, 22, 12, 0))).toBe('outside-schedule');
    expect(checkAccess(policy, [opaqueGroup('staff')], new Date(2026, 11, 25, 12, 0))).toBe('holiday');
    expect(checkAccess(policy, [opaqueGroup('staff'), opaqueGroup('security')], new Date(2026, 11, 25, 12, 0))).toBeNull();
  });

  it('refuses group names as group keys and free text as schedule names, without repeating them', () => {
    const issues = (raw: unknown) => {
      const r = Policy.safeParse(raw);
      expect(r.success).toBe(false);
      return r.error!.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
    };
    const byName = issues({ access: { groups: { 'bob-smith-ssn-123456789': 'always', [opaqueGroup('night')]: 'always' } } });
    expect(byName).toMatch(/^access\.groups: 1 of 2 keys is not an access group id/);
    expect(byName).not.toContain('bob-smith');
    const freeSchedule = issues({ access: { schedules: { 'Ana Garcia hours': [{ days: [1], from: '07:00', to: '19:00' }] } } });
    expect(freeSchedule).toMatch(/^access\.schedules: 1 of 1 keys is not a schedule name/);
    expect(freeSchedule).not.toContain('Ana');
    expect(issues({ access: { groups: { [opaqueGroup('night')]: 'Ana Garcia' } } })).toMatch(/a schedule name is a code/);
  });

  it('refuses a malformed policy with a clear message', () => {
    const r = Policy.safeParse({ access: { schedules: { x: [{ days: [1], from: '25:00', to: '19:00' }] } } });
    expect(r.success).toBe(false);
    expect(JSON.stringify(r.error?.issues)).toMatch(/HH:MM/);
  });
});
