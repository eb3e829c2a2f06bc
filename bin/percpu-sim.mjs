#!/usr/bin/env node
// Runs the TypeScript sources directly: tsx compiles them on load, so there is no build step.
import { register } from 'tsx/esm/api';

// a reader that goes away (percpu-sim replay big.jsonl | head -1) ends the program quietly
process.stdout.on('error', (e) => {
  if (e.code === 'EPIPE') process.exit(0);
  throw e;
});

register();
const { main } = await import('../src/cli/index.ts');
const code = await main(process.argv.slice(2));
// exit once the output is out, even if a stuck worker thread would keep the process alive
process.stdout.write('', () => process.stderr.write('', () => process.exit(code)));
