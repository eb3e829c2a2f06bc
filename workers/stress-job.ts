/**
 * A thread of the stress campaign pool (stress --jobs N): runs one seed and sends back its
 * report without the event log. The seed's run is the same as in the main thread.
 */
import { type StressJob, runSeed } from '../src/stress/campaign.ts';
import type { StressReport } from '../src/stress/engine.ts';

export default async function stressJob(job: StressJob): Promise<StressReport> {
  const r = await runSeed(job.cfg, job.seed);
  return { ...r, log: [] };
}
