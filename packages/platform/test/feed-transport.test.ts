import { describe, expect, it } from 'vitest';
import { feedTransport, registerEventFeed } from '../src/events/index.ts';
import { createHttpServer } from '../src/http.ts';
import { describeTransportConformance } from '../src/testing/transport-conformance.ts';
import { useTestDatabase } from '../src/testing/index.ts';

// The default transport (no server beyond PostgreSQL and the services) passes the suite.
describeTransportConformance({ key: 'feed', create: ({ urlOf }) => feedTransport({ urlOf }) });

describe('the event feed', async () => {
  const database = await useTestDatabase('masterdata');

  it('answers a malformed position with a problem naming the field', async () => {
    const producer = await createHttpServer({ service: 'masterdata', logger: false });
    await registerEventFeed(producer, { source: 'masterdata', schema: 'masterdata', db: database.db });
    const response = await producer.inject({ url: '/internal/v1/events?after=nonsense' });
    expect(response.statusCode).toBe(400);
    expect(response.json()).toMatchObject({ code: 'VALIDATION_FAILED', errors: [{ field: 'after' }] });
    await producer.close();
  });
});
