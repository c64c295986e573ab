/** Runs `clockface device --config FILE` as a real process (the role's own entry point). */
import { run } from '../main.js';

run(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
