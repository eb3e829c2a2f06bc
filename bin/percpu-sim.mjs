#!/usr/bin/env node
// Runs the TypeScript sources directly: tsx compiles them on load, so there is no build step.
import { register } from 'tsx/esm/api';

register();
const { main, watchStdout } = await import('../src/cli/index.ts');
watchStdout();
const code = await main(process.argv.slice(2));
// exit once the output is out, even if a stuck worker thread would keep the process alive
process.stdout.write('', () => process.stderr.write('', () => process.exit(code)));
