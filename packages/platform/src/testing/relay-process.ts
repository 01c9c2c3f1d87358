// A RabbitMQ relay in its own process, for the test that kills the leader (SIGKILL).
// Environment: DATABASE_URL (the producer's database), RABBITMQ_URL, SOURCE (also its schema).
// It reports its stats to the parent every 50 ms, and what went wrong on stderr.
import { createDatabase } from '../db.ts';
import { sharedConnection } from '../events/rabbitmq/connection.ts';
import { startRelay } from '../events/rabbitmq/relay.ts';

const env = process.env;
const source = env.SOURCE!;
const relay = startRelay({
  producer: { source, schema: source, db: createDatabase(env.DATABASE_URL!, { applicationName: 'relay-process' }), listenUrl: env.DATABASE_URL! },
  connection: sharedConnection(env.RABBITMQ_URL!),
  retryMs: 100,
  onError: (error) => process.stderr.write(`relay ${process.pid}: ${String(error)}\n`),
});
setInterval(() => process.send?.({ ...relay.stats, relayedThrough: undefined }), 50);
process.on('disconnect', () => process.exit(0)); // the test that started it is gone
