#!/usr/bin/env node
/**
 * The one `clockface` command. Each role lives in its own tier and is loaded only when asked
 * for, so a terminal never loads the cloud's code and `clockface --help` starts instantly.
 */
import { roles, type RoleName } from './roles.js';
import { printVersion } from './version.js';

const USAGE = `Usage: clockface <role> [options]

Roles:
${Object.entries(roles)
  .map(([name, r]) => `  ${name.padEnd(10)} ${r.summary}`)
  .join('\n')}
  version    print the package, Node and component versions (--json)

Run "clockface <role> --help" for a role's options.`;

async function main(argv: string[]): Promise<number> {
  const [role, ...rest] = argv;
  if (role === undefined || role === '--help' || role === '-h' || role === 'help') {
    console.log(USAGE);
    return role === undefined ? 2 : 0;
  }
  if (role === 'version' || role === '--version' || role === '-v') return printVersion(rest);
  const entry = roles[role as RoleName];
  if (!entry) {
    console.error(`clockface: unknown role "${role}"\n\n${USAGE}`);
    return 2;
  }
  const mod = await entry.load();
  return mod.run(rest);
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    // Expected failures (bad config, unreadable file) carry a message meant for the user.
    console.error(`clockface: ${err instanceof Error ? err.message : String(err)}`);
    process.exitCode = 1;
  },
);
