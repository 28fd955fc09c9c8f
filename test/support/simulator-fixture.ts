import { afterAll, beforeAll, beforeEach } from 'vitest';
import { resetRuntime } from '../../lib/runtime';
import { startCocSimulator, type CocSimulator, type SimCredential, type SimTaskSeed } from '../../simulator/coc-simulator';

/**
 * One COC simulator for a test file: started once, reset and seeded before each test,
 * closed (with the runtime the tests installed) at the end. Returns the running simulator.
 */
export function useSimulator(credential: SimCredential, seeds: Record<string, SimTaskSeed>): () => CocSimulator {
  let sim: CocSimulator | undefined;
  beforeAll(async () => {
    sim = await startCocSimulator({ credentials: [{ ...credential }] });
  });
  afterAll(async () => {
    resetRuntime();
    await sim?.close();
  });
  beforeEach(() => {
    sim!.reset();
    for (const [taskId, seed] of Object.entries(seeds)) sim!.seedTask(taskId, seed);
  });
  return () => sim!;
}
