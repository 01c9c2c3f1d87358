import { describe, expect, it } from 'vitest';
import { loadedAtStart } from '../build.mjs';

describe('the compiled services', () => {
  it('load the AWS SDK only when notification archives to S3, nodemailer only when IAM sends mail, amqplib only with EVENT_TRANSPORT=rabbitmq', { timeout: 60_000 }, async () => {
    const notification = await loadedAtStart('services/notification/src/main.ts');
    expect(notification).toContain('services/notification/src/archive/object-store.ts');
    expect(notification.filter((file) => file.includes('node_modules/@aws-sdk/'))).toEqual([]);
    const iam = await loadedAtStart('services/iam/src/main.ts');
    expect(iam).toContain('packages/platform/src/mail/index.ts');
    expect(iam.filter((file) => file.includes('node_modules/nodemailer/'))).toEqual([]);
    const core = await loadedAtStart('services/core/src/main.ts');
    expect(core).toContain('packages/platform/src/events/transports.ts');
    expect(core.filter((file) => file.includes('node_modules/amqplib/'))).toEqual([]);
  });
});
