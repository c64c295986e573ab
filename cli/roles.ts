/** What each role's module exports: run(argv) resolves to the process exit code. */
export interface RoleModule {
  run(argv: string[]): Promise<number>;
}

interface Role {
  summary: string;
  load: () => Promise<RoleModule>;
}

export const roles = {
  device: { summary: 'run a wall terminal (clockface device --config FILE)', load: () => import('../device/main.js') },
  gateway: { summary: 'run a site gateway: MQTT broker, store and forward', load: () => import('../gateway/main.js') },
  cloud: { summary: 'run the cloud API, photo vault, re-checks and retention', load: () => import('../cloud/main.js') },
  provision: { summary: 'set up tenants, gateways and terminals (facilities staff)', load: () => import('../provisioning/cli.js') },
  face: { summary: 'inspect, compare and evaluate faces with the terminal engine', load: () => import('../device/face/cli.js') },
  hw: { summary: 'test the terminal hardware on site (hw test / hw reset-outputs)', load: () => import('../device/hardware/cli.js') },
  demo: { summary: 'run the end-to-end demonstration', load: () => import('../demo/main.js') },
} satisfies Record<string, Role>;

export type RoleName = keyof typeof roles;
