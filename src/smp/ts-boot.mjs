// Entry point for worker threads started from TypeScript sources (tsx or vitest): Node 20
// cannot load a .ts worker directly, so the worker registers tsx itself, then imports the
// real entry given as --ts-entry=URL.
import { register } from 'tsx/esm/api';

const arg = process.argv.find((a) => a.startsWith('--ts-entry='));
if (!arg) throw new Error('ts-boot.mjs: missing --ts-entry=');
register();
const mod = await import(arg.slice('--ts-entry='.length));
export default mod.default;
