/** Flags shared by the commands that build a machine (run, stress). */
export const MACHINE_OPTIONS = {
  cpus: { type: 'string' },
  nodes: { type: 'string' },
  backend: { type: 'string' },
  memory: { type: 'string' },
  seed: { type: 'string' },
  policy: { type: 'string' },
} as const;
