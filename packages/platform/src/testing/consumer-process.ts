// A consumer in its own process, for the conformance suite's crash test (killed with SIGKILL).
// Environment: TRANSPORT (a key of `transports`), SOURCE_URLS (JSON service → URL),
// DATABASE_URL (the consumer's database), CONSUMER (its name), DELAY_MS, RABBITMQ_URL (for `rabbitmq`).
import { createDatabase } from '../db.ts';
import { startConsumer } from '../events/consumer.ts';
import { feedTransport } from '../events/feed-transport.ts';
import { rabbitmqTransport } from '../events/rabbitmq/index.ts';
import type { EventTransport } from '../events/transport.ts';
import { conformanceHandler } from './conformance-consumer.ts';
import { testCredentials } from './credentials.ts';

const transports: Record<string, (urls: Record<string, string>) => EventTransport> = {
  feed: (urls) => feedTransport({ urlOf: (service) => urls[service]!, credentials: testCredentials('core') }),
  rabbitmq: (urls) => rabbitmqTransport({ url: process.env.RABBITMQ_URL!, urlOf: (service) => urls[service]!, credentials: testCredentials('core') }),
};

const env = process.env;
const transport = transports[env.TRANSPORT ?? '']!(JSON.parse(env.SOURCE_URLS ?? '{}') as Record<string, string>);
const name = env.CONSUMER!;
startConsumer<unknown>({
  name,
  subscription: transport.subscribe({ source: 'masterdata', group: name }),
  db: createDatabase(env.DATABASE_URL!, { applicationName: 'conformance-consumer' }),
  handle: conformanceHandler(name, { delayMs: Number(env.DELAY_MS ?? 0) }),
  batchSize: 50,
  waitMs: 1_000,
});
process.send?.('started');
