import { afterAll, describe, it } from 'vitest';
import { rabbitmqTransport } from '../src/events/rabbitmq/index.ts';
import { rabbitmqInstalled, startRabbitMq } from '../src/testing/rabbitmq.ts';
import { describeTransportConformance } from '../src/testing/transport-conformance.ts';

// In CI (`.ci/run` installs rabbitmq-server) a missing broker fails the file; elsewhere it is skipped.
if (rabbitmqInstalled || process.env.CI) {
  const broker = await startRabbitMq();
  afterAll(() => broker.stop());
  process.env.RABBITMQ_URL = broker.url; // for the consumer process the crash test starts
  describeTransportConformance({ key: 'rabbitmq', create: ({ urlOf, credentials }) => rabbitmqTransport({ url: broker.url, urlOf, credentials }) });
} else {
  describe.skip('event transport "rabbitmq" conformance (rabbitmq-server is not installed)', () => it('runs with a real broker'));
}
