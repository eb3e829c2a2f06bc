/** `percpu-sim boot`: the first chunk as setup_per_cpu_areas() builds it, and its boot lines. */
import { PERCPU_DYNAMIC_RESERVE, PERCPU_MODULE_RESERVE } from '../kernel/constants.ts';
import { type BackendKind, DEFAULT_STATIC_SIZE, FIRST_CHUNK_KINDS } from '../kernel/setup.ts';
import { bootMachine, groupsByNode } from '../sim/boot.ts';
import { type Command, MAX_NODES, UsageError, cpuNodesFlag, distanceFlag, int, mib, oneOf, parse } from './common.ts';

export const boot: Command = {
  summary: 'boot a machine and print the percpu boot lines (setup_per_cpu_areas)',
  help: `Usage: percpu-sim boot [options]

Builds the first chunk the way setup_per_cpu_areas() does and prints the kernel's boot
lines: "PERCPU: Embedded ..." (or the page first chunk's line) and the pcpu-alloc dump.

Options:
  --cpus N          possible CPUs, 1 to 4096 (default 4, or as many as --cpu-nodes names)
  --nodes N         NUMA nodes; CPUs are spread over them in blocks (default 1). With more
                    than one, percpu-vm groups units by node, as run and stress do
  --cpu-nodes LIST  the node of every CPU: "0,1,0,1" (CPU n on the n-th node) or ranges
                    "0-15:0,16-31:1"
  --distance D      node distance: one remote distance ("21") or the table, rows split by
                    "/" ("10,21/21,10"); default 10 local, 20 remote
  --numa            group CPUs by node distance also with --backend km (percpu-vm does by
                    itself); needs --nodes > 1
  --backend vm|km   chunk backend (default vm)
  --fc auto|embed|page
                    first chunk allocator (default auto: embed, and when the groups lie
                    further apart than 3/4 of the vmalloc space, the kernel's warning and
                    the page first chunk, as x86 does; embed warns and embeds anyway)
  --static BYTES    static percpu section size (default ${DEFAULT_STATIC_SIZE})
  --reserved BYTES  reserved area for modules (default ${PERCPU_MODULE_RESERVE})
  --dyn BYTES       dynamic area (default ${PERCPU_DYNAMIC_RESERVE})
  --atom BYTES      allocation atom, e.g. 2097152 for large pages (default 4096)
  --memory MIB      physical memory, split evenly over the nodes (default 64)
  --vmalloc MIB     size of the vmalloc space (default 8192)
  -h, --help        this text

Examples:
  percpu-sim boot --cpus 8 --nodes 2 --atom 2097152
  percpu-sim boot --cpu-nodes 0-17:0,18-35:1,36-53:0,54-71:1 --atom 2097152
  percpu-sim boot --cpus 8 --cpu-nodes 0,1,0,1,0,1,0,1 --memory 256 --vmalloc 128`,
  async run(argv) {
    const { values, positionals } = parse(argv, {
      cpus: { type: 'string' },
      nodes: { type: 'string' },
      'cpu-nodes': { type: 'string' },
      distance: { type: 'string' },
      numa: { type: 'boolean' },
      backend: { type: 'string' },
      fc: { type: 'string' },
      static: { type: 'string' },
      reserved: { type: 'string' },
      dyn: { type: 'string' },
      atom: { type: 'string' },
      memory: { type: 'string' },
      vmalloc: { type: 'string' },
    });
    if (positionals.length) throw new UsageError(`boot takes no arguments, got ${positionals.join(' ')}`);
    const backend = oneOf('--backend', values.backend, ['vm', 'km'] as const, 'vm');
    const given = (v: unknown, flag: string, max: number) => (v === undefined ? undefined : int(flag, v, 1, max, 1));
    const map = cpuNodesFlag(
      values['cpu-nodes'],
      given(values.cpus, '--cpus', 4096),
      given(values.nodes, '--nodes', MAX_NODES),
    );
    const cpus = map?.cpus ?? int('--cpus', values.cpus, 1, 4096, 4);
    const nodes = map?.nodes ?? int('--nodes', values.nodes, 1, MAX_NODES, 1);
    if (!map && nodes > cpus)
      throw new UsageError(`--nodes ${nodes} is more than --cpus ${cpus}: every node needs a CPU`);
    if (values.numa === true && nodes < 2) throw new UsageError('--numa groups CPUs by node: give --nodes 2 or more');
    const atom = int('--atom', values.atom, 4096, 1 << 30, 4096);
    if (atom & (atom - 1))
      throw new UsageError(
        `--atom must be a power of two (the allocation atom: 4096 for pages, 2097152 for large pages), got ${atom}`,
      );
    const fc = oneOf('--fc', values.fc, FIRST_CHUNK_KINDS, 'auto');
    const distance = distanceFlag(values.distance, nodes);
    const { pc } = bootMachine({
      cpus,
      nodes,
      ...(map ? { cpuToNode: map.cpuToNode } : {}),
      ...(distance ? { distance } : {}),
      memoryMiB: mib('--memory', values.memory ?? '64', 16, 4096) / 2 ** 20,
      ...(values.vmalloc !== undefined ? { vmallocBytes: mib('--vmalloc', values.vmalloc, 1, 65536) } : {}),
      backend: backend as BackendKind,
      fc,
      // as run and stress boot it: percpu-vm groups units by node on a machine with nodes
      numaGroups: values.numa === true || groupsByNode({ nodes, backend }),
      contents: false,
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
