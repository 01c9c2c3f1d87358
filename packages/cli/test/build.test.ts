import { existsSync, readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { loadedAtStart } from '../build.mjs';

const packagesIn = (files: readonly string[], names: readonly string[]) => names.filter((name) => files.some((file) => file.includes(`node_modules/${name}/`)));

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

  it('load ioredis and the Socket.IO Redis adapter only with REDIS_URL', { timeout: 60_000 }, async () => {
    const redis = ['ioredis', '@socket.io/redis-streams-adapter'];
    const notification = await loadedAtStart('services/notification/src/main.ts');
    expect(notification).toContain('services/notification/src/realtime/realtime.ts');
    expect(packagesIn(notification, redis)).toEqual([]);
    const gateway = await loadedAtStart('services/gateway/src/main.ts');
    expect(gateway).toContain('services/gateway/src/access.ts');
    expect(packagesIn(gateway, redis)).toEqual([]);
  });
});

describe('the compiled CLI', () => {
  // `start` stays up as the supervisor: what it imports (its command, every migration to list
  // them, every seed) it holds for as long as the system runs.
  const heavy = ['fastify', '@fastify/swagger', 'ajv', 'yaml', 'amqplib', 'undici', 'ioredis'];

  it('loads none of the HTTP stack, YAML or a broker client to start the system', { timeout: 60_000 }, async () => {
    const cli = await loadedAtStart('packages/cli/src/main.ts');
    expect(cli).toContain('packages/cli/src/main.ts');
    expect(packagesIn(cli, heavy)).toEqual([]);
    const start = await loadedAtStart('packages/cli/src/commands/start.ts');
    expect(start).toContain('packages/cli/src/supervisor.ts');
    expect(packagesIn(start, heavy)).toEqual([]);
  });

  it('loads none of them through a migration or a seed either', { timeout: 60_000 }, async () => {
    const services = readdirSync('services').filter((key) => existsSync(`services/${key}/migrations`));
    const modules = services.flatMap((key) => [
      `services/${key}/src/seed.ts`,
      ...readdirSync(`services/${key}/migrations`)
        .filter((file) => file.endsWith('.ts'))
        .map((file) => `services/${key}/migrations/${file}`),
    ]);
    for (const module of modules) expect({ module, loads: packagesIn(await loadedAtStart(module), heavy) }).toEqual({ module, loads: [] });
  });
});
