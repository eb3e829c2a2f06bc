/**
 * The import rules of docs/architecture.md. Folders of src/ form layers, lowest first; a
 * module may import its own folder and the folders below it, never one above, and never in a
 * circle. `npm test` runs this check (npm run check:deps).
 */
const LAYERS = [
  'util',
  'model',
  'mem',
  'kernel',
  'sim',
  'check',
  'api',
  'files',
  'trace',
  'actor',
  'harness',
  'smp',
  'stress',
  'explore',
  'report',
  'cli',
];

const upward = LAYERS.map((layer, i) => ({
  name: `${layer}-imports-upward`,
  comment: `src/${layer} may import only ${LAYERS.slice(0, i).join(', ') || 'nothing of src'} (docs/architecture.md)`,
  severity: 'error',
  from: { path: `^src/${layer}/` },
  to: { path: `^src/(${LAYERS.slice(i + 1).join('|')})/` },
}));

module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      comment: 'a circle of imports, type-only ones included, means two modules are one concept or a layer is wrong',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
    ...upward,
    {
      name: 'kernel-is-pure',
      comment: 'src/kernel is the 2.6.36 port: no Node.js, no threads, no actor library',
      severity: 'error',
      from: { path: '^src/(kernel|mem|util)/' },
      to: { path: '(^node:|xstate|comlink|piscina|esbuild|tsx|zod)', dependencyTypesNot: ['type-only'] },
    },
    {
      name: 'kernel-no-node-builtins',
      severity: 'error',
      from: { path: '^src/(kernel|mem|util)/' },
      to: { dependencyTypes: ['core'] },
    },
    {
      name: 'nothing-imports-cli',
      comment: 'the command line is the top: only bin/ and tests reach it',
      severity: 'error',
      from: { path: '^(src|workers|examples|bench)/', pathNot: '^src/cli/' },
      to: { path: '^src/cli/' },
    },
    {
      name: 'report-is-for-cli',
      comment: 'report/ is formatting; drivers hand their observers in through harness/observer.ts',
      severity: 'error',
      from: { path: '^(src|workers)/', pathNot: '^src/(report|cli)/' },
      to: { path: '^src/report/' },
    },
    {
      name: 'workers-are-entries',
      comment: 'workers/ holds thread entry points only; nothing in src imports them',
      severity: 'error',
      from: { path: '^src/' },
      to: { path: '^workers/' },
    },
    {
      name: 'examples-use-the-public-api',
      comment: "examples import only from 'percpu-sim' (src/index.ts) and from each other",
      severity: 'error',
      from: { path: '^examples/' },
      to: { path: '^(src|workers|bench|test)/', pathNot: '^src/index\\.ts$' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'types', 'default'] },
  },
};
