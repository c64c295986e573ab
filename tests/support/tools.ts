import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

/**
 * The programs the tests drive for real, and the Debian package of each — the same table as
 * scripts/test-tools.sh, which `npm test` runs first to install them.
 */
export const TEST_TOOLS = {
  socat: 'socat',
  mosquitto: 'mosquitto',
  mosquitto_pub: 'mosquitto-clients',
  mosquitto_sub: 'mosquitto-clients',
  shellcheck: 'shellcheck',
  'systemd-analyze': 'systemd',
} as const;
export type TestTool = keyof typeof TEST_TOOLS;

/** Whether `command` is an executable file in one of PATH's folders (what spawn will find). */
export function onPath(command: string, path = process.env.PATH ?? ''): boolean {
  return path.split(delimiter).some((dir) => {
    if (!dir) return false;
    try {
      accessSync(join(dir, command), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/**
 * Fails the calling test file at once, with the command that installs the tool, when a
 * program it drives is missing: a missing tool must never read as a pass or a quiet skip.
 * Call it at the top of the test file (or in its beforeAll).
 */
export function requireTool(...commands: TestTool[]): void {
  const missing = commands.filter((c) => !onPath(c));
  if (missing.length === 0) return;
  const packages = [...new Set(missing.map((c) => TEST_TOOLS[c]))];
  throw new Error(
    `${missing.join(', ')} not found on PATH, and this test drives it for real. ` +
      `Install with: scripts/test-tools.sh (npm test runs it first), or: sudo apt-get install -y ${packages.join(' ')}`,
  );
}
