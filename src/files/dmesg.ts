/** The JSON of `percpu-sim dmesg --json`, as a reader checks it. */
import { z } from 'zod';

const count = z.number().int().min(0);

export const DmesgReportSchema = z
  .object({
    file: z.string(),
    machine: z
      .object({
        cpus: z.number().int().min(1).max(4096),
        nodes: z.number().int().min(1).max(16),
        cpu_to_node: z.array(z.number().int().min(0).max(15)),
        map_from: z.enum(['groups', 'blocks']),
        static_size: count,
        reserved_size: count,
        dyn_size: count,
        atom_size: z.number().int().min(4096),
        page_size: z.number().int().min(1),
        first_chunk: z.enum(['embed', 'page', 'fallback']),
        too_far: z.boolean(),
        backend: z.enum(['vm', 'km']),
        memory_mib: z.number().int().min(16).max(4096),
        vmalloc_bytes: z.number().int().min(1).nullable(),
      })
      .strict(),
    command: z.string().startsWith('percpu-sim boot '),
    lines: z.array(
      z
        .object({
          kind: z.enum(['setup', 'max-distance', 'fallback', 'header', 'wasting', 'sizes', 'groups', 'other']),
          line: z.number().int().min(1).nullable(),
          real: z.string().nullable(),
          simulated: z.string().nullable(),
          status: z.enum(['same', 'explained', 'unexplained', 'input', 'not compared']),
          reasons: z.array(z.string()),
        })
        .strict(),
    ),
    percpu_lines: count,
    ignored_lines: count,
    unexplained: count,
  })
  .strict()
  .refine((r) => r.machine.cpu_to_node.length === r.machine.cpus, 'cpu_to_node has an entry for every CPU');

export type DmesgReport = z.infer<typeof DmesgReportSchema>;
