import { afterAll, describe, expect, it } from 'vitest';
import { rabbitmqInstalled } from '@archipelago/platform/testing/rabbitmq';
import { redisInstalled } from '@archipelago/platform/testing/redis';
import { runAllCleanups } from '../../bench/src/lib/cleanup.ts';
import { runDistributedFaults } from '../../bench/src/faults/distributed.ts';

// The short variant of `npm run test:faults:distributed` (README "Fault runs"): the whole
// distributed topology under load with sockets connected, core's relay leader SIGKILLed and
// RabbitMQ killed and started again, then the ledger check: nothing lost, no duplicate effect.
// In CI (`.ci/run` installs rabbitmq-server and redis-server) missing binaries fail the file; elsewhere it is skipped.
describe.skipIf((!rabbitmqInstalled || !redisInstalled) && !process.env.CI)('the distributed system under faults (short run)', () => {
  const abort = new AbortController();
  const lines: string[] = [];
  // Every process it started is stopped by pid, also when the run fails or times out.
  afterAll(async () => {
    abort.abort();
    await runAllCleanups(() => undefined);
  });

  it('loses nothing and applies nothing twice when the relay leader and RabbitMQ are killed under load', async () => {
    const timer = setTimeout(() => abort.abort(), 230_000);
    try {
      const result = await runDistributedFaults({ faults: ['relay-leader', 'rabbitmq'], signal: abort.signal, say: (line) => lines.push(line), observeS: 15, warmupS: 5, workers: 3, departmentSockets: 2 });
      // No loss, no duplicate effect, and everything killed came back (core's instance, its relay's leadership, the broker).
      expect(result.problems, lines.join('\n')).toEqual([]);
    } finally {
      clearTimeout(timer);
    }
  }, 240_000);
});
