/** What each role's module exports: run(argv) resolves to the process exit code. */
export interface RoleModule {
  run(argv: string[]): Promise<number>;
}

interface Role {
  summary: string;
  load: () => Promise<RoleModule>;
}

/** A role whose tier has not been built yet says so plainly instead of pretending. */
function notBuilt(role: string, issue: number): () => Promise<RoleModule> {
  return async () => ({
    run: async () => {
      console.error(`clockface ${role}: not built yet (tracked in issue ${issue}).`);
      return 3;
    },
  });
}

export const roles = {
  device: { summary: 'run a wall terminal (clockface device --config FILE)', load: notBuilt('device', 5) },
  gateway: { summary: 'run a site gateway: MQTT broker, store and forward', load: notBuilt('gateway', 6) },
  cloud: { summary: 'run the cloud API, photo vault, re-checks and retention', load: () => import('../cloud/main.js') },
  provision: { summary: 'set up tenants, gateways and terminals (facilities staff)', load: notBuilt('provision', 8) },
  face: { summary: 'inspect, compare and evaluate faces with the terminal engine', load: notBuilt('face', 3) },
  hw: { summary: 'test the terminal hardware on site', load: notBuilt('hw', 4) },
  demo: { summary: 'run the end-to-end demonstration', load: () => import('../demo/main.js') },
} satisfies Record<string, Role>;

export type RoleName = keyof typeof roles;
