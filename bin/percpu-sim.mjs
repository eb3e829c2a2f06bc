#!/usr/bin/env node
// Runs the TypeScript sources, compiled by esbuild into node_modules/.cache once and again
// whenever a source changes (see compiled.mjs): a command starts in about a third of the time
// tsx's loader takes to compile the same modules on every start. tsx is the fallback.
import { compiledCli } from './compiled.mjs';

let cli = await compiledCli();
// a stack (--verbose) names the sources' files and lines, not the build's
if (cli && process.argv.includes('--verbose')) process.setSourceMapsEnabled(true);
if (!cli) {
  const { register } = await import('tsx/esm/api');
  register();
  cli = '../src/cli/index.ts';
}
const { main, watchStdout } = await import(cli);
watchStdout();
const code = await main(process.argv.slice(2));
// exit once the output is out, even if a stuck worker thread would keep the process alive
process.stdout.write('', () => process.stderr.write('', () => process.exit(code)));
