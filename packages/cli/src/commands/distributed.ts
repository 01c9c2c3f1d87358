import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Registry } from '@archipelago/registry';
import { startRabbitmqServer, startRedisServer, type Broker, type BrokerEvent } from '../brokers.ts';
import { listenForInterrupt, start } from './start.ts';

/** How events travel under `start:distributed` unless EVENT_TRANSPORT says otherwise. */
export const DISTRIBUTED_EVENT_TRANSPORT: 'feed' | 'rabbitmq' = 'rabbitmq';

/**
 * `archipelago start --distributed` (`npm run start:distributed`): the distributed topology on
 * this machine from system binaries: `redis-server`, `rabbitmq-server`, one embedded PostgreSQL
 * per service, each on loopback with its data in a temporary directory (or ARCHIPELAGO_DATA_DIR,
 * then kept), and every service's `replicas` instances behind the gateway. Ctrl-C stops the
 * services, the clusters, then the brokers, each by its pid.
 */
export async function startDistributed(registry: Registry, keys: readonly string[], env: Readonly<Record<string, string | undefined>>, say: (line: string) => void): Promise<void> {
  const interrupt = listenForInterrupt();
  const temporary = env.ARCHIPELAGO_DATA_DIR ? undefined : await mkdtemp(path.join(tmpdir(), 'archipelago-distributed-'));
  const dataDir = path.resolve(env.ARCHIPELAGO_DATA_DIR ?? temporary!);
  const brokers: Broker[] = [];
  try {
    const onEvent = (event: BrokerEvent) => say(describeBrokerEvent(event));
    const started = await Promise.allSettled([startRedisServer(path.join(dataDir, 'redis'), onEvent), startRabbitmqServer(path.join(dataDir, 'rabbitmq'), onEvent)]);
    for (const result of started) if (result.status === 'fulfilled') brokers.push(result.value);
    const failed = started.find((result): result is PromiseRejectedResult => result.status === 'rejected');
    if (failed) throw failed.reason;
    const [redis, rabbitmq] = brokers as [Broker, Broker];
    say(`Redis started on ${redis.url} (pid ${redis.pid}); RabbitMQ on ${rabbitmq.url.replace(/\/\/[^@]*@/, '//')} (pid ${rabbitmq.pid})`);
    const transport = env.EVENT_TRANSPORT ?? DISTRIBUTED_EVENT_TRANSPORT;
    say(`Events travel by ${transport === 'rabbitmq' ? 'RabbitMQ' : 'the outbox feed (EVENT_TRANSPORT=rabbitmq to use RabbitMQ)'}. Data in ${dataDir}${temporary ? ' (removed on exit)' : ''}`);
    say(`Other CLI commands: ARCHIPELAGO_TOPOLOGY=distributed ARCHIPELAGO_DATA_DIR=${dataDir} npm run cli -- db status`);
    if (interrupt.received()) return;
    // The seeds run in this process and read its environment (IAM's keeps the admin's password there).
    process.env.ARCHIPELAGO_DATA_DIR = dataDir;
    await start(
      registry,
      keys,
      {
        ...env,
        ARCHIPELAGO_TOPOLOGY: 'distributed',
        ARCHIPELAGO_DATA_DIR: dataDir,
        REDIS_URL: env.REDIS_URL ?? redis.url,
        RABBITMQ_URL: env.RABBITMQ_URL ?? rabbitmq.url,
        EVENT_TRANSPORT: transport,
      },
      say,
      interrupt,
    );
  } finally {
    await Promise.all(brokers.map((broker) => broker.stop()));
    if (temporary) await rm(temporary, { recursive: true, force: true });
    interrupt.dispose();
  }
}

const BROKER_NAMES: Record<string, string> = { redis: 'Redis', rabbitmq: 'RabbitMQ' };

/** The CLI's line for a broker's exit and restart (the fault run reads these). */
export function describeBrokerEvent(event: BrokerEvent): string {
  const name = BROKER_NAMES[event.name] ?? event.name;
  switch (event.kind) {
    case 'exited':
      return `  ✗ ${name} exited (${event.signal ?? `code ${event.code}`}); restarting it on the same port and data`;
    case 'restart-failed':
      return `  … ${name} did not start yet (${event.message}); retry ${event.attempt} in ${event.retryInMs} ms`;
    case 'restarted':
      return `  ✓ ${name} restarted in ${(event.ms / 1000).toFixed(1)} s (pid ${event.pid})`;
  }
}
