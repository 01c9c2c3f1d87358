import { afterAll, describe, expect, it } from 'vitest';
import { createHttpServer, freePort } from '@archipelago/platform';
import { connectRedis, type RedisLogger } from '@archipelago/platform/redis';
import { redisInstalled, startRedis } from '@archipelago/platform/testing/redis';

const recorder = () => {
  const lines: { level: string; fields: object; message: string }[] = [];
  const logger: RedisLogger = {
    warn: (fields, message) => lines.push({ level: 'warn', fields, message }),
    info: (fields, message) => lines.push({ level: 'info', fields, message }),
  };
  return { lines, logger };
};

describe('the platform Redis connection', () => {
  it('logs an outage once, and never the password of its URL', async () => {
    const { lines, logger } = recorder();
    const redis = connectRedis(`redis://:s3cret-pass@127.0.0.1:${await freePort()}`, { name: 'test', logger });
    try {
      expect(redis.target).not.toContain('s3cret-pass');
      expect(await redis.whenReady(500)).toBe(false);
      await expect(redis.client.get('k')).rejects.toThrow();
      expect(lines.filter((line) => line.level === 'warn')).toHaveLength(1);
      expect(JSON.stringify(lines)).not.toContain('s3cret-pass');
    } finally {
      await redis.close();
    }
  });

  // CI installs redis-server (.ci/run); a developer without it sees these skipped, not passed.
  describe.skipIf(!redisInstalled && !process.env.CI)('against a real redis-server', async () => {
    const server = await startRedis();
    afterAll(() => server.stop());

    it('fails requests at once while Redis is down, and serves again once it is back on the same port', async () => {
      const { lines, logger } = recorder();
      const redis = connectRedis(server.url, { name: 'test.requests', logger });
      try {
        expect(await redis.whenReady(2_000)).toBe(true);
        await redis.client.set('k', 'v');
        await server.kill();
        await expect(redis.client.get('k')).rejects.toThrow();
        expect(redis.ready()).toBe(false);
        await server.start();
        expect(await redis.whenReady(10_000)).toBe(true);
        expect(await redis.client.get('k')).toBeNull(); // an empty server: no persistence in tests
        expect(lines.map((line) => line.message)).toEqual([expect.stringContaining('unreachable'), 'Redis reachable again']);
      } finally {
        await redis.close();
      }
    });

    it('holds a streams command through an outage and runs it once Redis is back', async () => {
      const redis = connectRedis(server.url, { name: 'test.streams', mode: 'streams' });
      try {
        expect(await redis.whenReady(2_000)).toBe(true);
        await server.kill();
        const held = redis.client.xadd('s', '*', 'field', 'value');
        await server.start();
        expect(await held).toMatch(/^\d+-\d+$/);
        expect(await redis.client.xlen('s')).toBe(1);
      } finally {
        await redis.close();
      }
    });

    it('is closed with the app', async () => {
      const app = await createHttpServer({ service: 'test', logger: false });
      const redis = connectRedis(server.url, { name: 'test.app', app });
      expect(await redis.whenReady(2_000)).toBe(true);
      await app.close();
      expect(redis.client.status).toBe('end');
    });
  });
});
