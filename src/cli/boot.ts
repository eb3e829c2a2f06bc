/** `percpu-sim boot`: the first chunk as setup_per_cpu_areas() builds it, and its boot lines. */
import { PERCPU_DYNAMIC_RESERVE, PERCPU_MODULE_RESERVE } from '../kernel/constants.ts';
import { type BackendKind, DEFAULT_STATIC_SIZE, type FirstChunkKind } from '../kernel/setup.ts';
import { bootMachine } from '../sim/boot.ts';
import { type Command, UsageError, int, mib, oneOf, parse } from './common.ts';

export const boot: Command = {
  summary: 'boot a machine and print the percpu boot lines (setup_per_cpu_areas)',
  help: `Usage: percpu-sim boot [options]

Builds the first chunk the way setup_per_cpu_areas() does and prints the kernel's boot
lines: "PERCPU: Embedded ..." (or the page first chunk's line) and the pcpu-alloc dump.

Options:
  --cpus N          possible CPUs (default 4)
  --nodes N         NUMA nodes; CPUs are spread over them in blocks (default 1)
  --numa            group CPUs by node distance (sparse groups); needs --nodes > 1
  --backend vm|km   chunk backend (default vm)
  --fc embed|page   first chunk allocator (default embed)
  --static BYTES    static percpu section size (default ${DEFAULT_STATIC_SIZE})
  --reserved BYTES  reserved area for modules (default ${PERCPU_MODULE_RESERVE})
  --dyn BYTES       dynamic area (default ${PERCPU_DYNAMIC_RESERVE})
  --atom BYTES      allocation atom, e.g. 2097152 for large pages (default 4096)
  --memory MIB      physical memory (default 64)
  -h, --help        this text

Example:
  percpu-sim boot --cpus 8 --nodes 2 --numa --atom 2097152`,
  async run(argv) {
    const { values, positionals } = parse(argv, {
      cpus: { type: 'string' },
      nodes: { type: 'string' },
      numa: { type: 'boolean' },
      backend: { type: 'string' },
      fc: { type: 'string' },
      static: { type: 'string' },
      reserved: { type: 'string' },
      dyn: { type: 'string' },
      atom: { type: 'string' },
      memory: { type: 'string' },
    });
    if (positionals.length) throw new UsageError(`boot takes no arguments, got ${positionals.join(' ')}`);
    const backend = oneOf('--backend', values.backend, ['vm', 'km'] as const, 'vm');
    const cpus = int('--cpus', values.cpus, 1, 1024, 4);
    const nodes = int('--nodes', values.nodes, 1, 16, 1);
    if (nodes > cpus) throw new UsageError(`--nodes ${nodes} is more than --cpus ${cpus}: every node needs a CPU`);
    if (values.numa === true && nodes < 2) throw new UsageError('--numa groups CPUs by node: give --nodes 2 or more');
    const atom = int('--atom', values.atom, 4096, 1 << 30, 4096);
    if (atom & (atom - 1))
      throw new UsageError(
        `--atom must be a power of two (the allocation atom: 4096 for pages, 2097152 for large pages), got ${atom}`,
      );
    const fc = oneOf('--fc', values.fc, ['embed', 'page'] as const, 'embed');
    const { pc } = bootMachine({
      cpus,
      nodes,
      memoryMiB: mib('--memory', values.memory ?? '64', 16, 4096) / 2 ** 20,
      backend: backend as BackendKind,
      fc: fc as FirstChunkKind,
      numaGroups: values.numa === true,
      sizes: {
        static_size: int('--static', values.static, 1, 1 << 24, DEFAULT_STATIC_SIZE),
        reserved_size: int('--reserved', values.reserved, 0, 1 << 24, PERCPU_MODULE_RESERVE),
        dyn_size: int('--dyn', values.dyn, 0, 1 << 24, PERCPU_DYNAMIC_RESERVE),
        atom_size: atom,
      },
    });
    process.stdout.write(pc.dmesg.join('\n') + '\n');
    return 0;
  },
};
