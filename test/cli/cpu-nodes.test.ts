/** --cpu-nodes and --distance on the commands that boot a machine: the map reaches the machine and the rerun command. */
import { describe, expect, it } from 'vitest';
import { stressConfig } from '../../src/cli/stress.ts';
import { StressConfigSchema } from '../../src/files/config.ts';
import { stressCommand } from '../../src/files/rerun.ts';
import { runStress } from '../../src/stress/engine.ts';

describe('--cpu-nodes on stress', () => {
  it('sets the CPUs, the nodes and the map, and the rerun command carries them', () => {
    const cfg = stressConfig({ 'cpu-nodes': '0,1,0,1', distance: '30' });
    expect([cfg.cpus, cfg.nodes, cfg.cpuToNode, cfg.distance]).toEqual([
      4,
      2,
      [0, 1, 0, 1],
      [
        [10, 30],
        [30, 10],
      ],
    ]);
    expect(stressCommand(cfg)).toContain(' --cpus 4 --nodes 2 --cpu-nodes 0,1,0,1 --distance 10,30/30,10 --backend ');
    expect(StressConfigSchema.parse(JSON.parse(JSON.stringify(cfg)))).toEqual(cfg);
  });

  it('refuses a map that disagrees with --cpus', () => {
    expect(() => stressConfig({ 'cpu-nodes': '0,1', cpus: '3' })).toThrow(
      '--cpu-nodes places 2 CPUs, but --cpus is 3: give a node for every CPU',
    );
  });

  it('the machine a run boots has the map, and a clean run stays clean', async () => {
    let map: readonly number[] = [];
    const r = await runStress(
      StressConfigSchema.parse({ seed: 2, cpus: 4, nodes: 2, cpuToNode: [0, 1, 1, 0], args: { ops: 50 } }),
      { onBoot: (pc) => (map = pc.machine.cpuToNodeMap) },
    );
    expect(map).toEqual([0, 1, 1, 0]);
    expect(r.verdict).toBe('clean');
  });
});
