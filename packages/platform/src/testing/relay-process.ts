// A RabbitMQ relay in its own process, for the test that kills the leader (SIGKILL).
// Environment: DATABASE_URL (the producer's database), RABBITMQ_URL, SOURCE (also its schema).
import { createDatabase } from '../db.ts';
import { sharedConnection } from '../events/rabbitmq/connection.ts';
import { startRelay } from '../events/rabbitmq/relay.ts';

const env = process.env;
const source = env.SOURCE!;
startRelay({
  producer: { source, schema: source, db: createDatabase(env.DATABASE_URL!, { applicationName: 'relay-process' }), listenUrl: env.DATABASE_URL! },
  connection: sharedConnection(env.RABBITMQ_URL!),
  retryMs: 100,
});
process.send?.('started');
