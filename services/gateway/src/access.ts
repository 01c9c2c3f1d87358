import rateLimit from '@fastify/rate-limit';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { AppError, type HttpServer } from '@archipelago/platform';
import type { Auth } from '@archipelago/platform/auth';
import { isUnder } from './paths.ts';
import type { GatewaySettings } from './settings.ts';

/**
 * The gateway's checks before proxying, as one onRequest hook: a per-address rate limit, the
 * token (on every route but the ones the registry declares `public`), then a per-user rate limit. Services check the
 * token and the permissions again: the gateway is not the only line.
 */
export async function accessGuard(
  app: HttpServer,
  auth: Auth,
  settings: GatewaySettings,
  publicRoutes: readonly string[],
): Promise<(request: FastifyRequest, reply: FastifyReply) => Promise<void>> {
  let redis: { quit(): Promise<unknown>; disconnect(): void } | undefined;
  if (settings.redisUrl) {
    const ioredis = await import('ioredis');
    // In the bundle `npm start` runs (esbuild's CommonJS interop) the named export is missing; the default is the class.
    const Redis = typeof ioredis.Redis === 'function' ? ioredis.Redis : (ioredis.default as unknown as typeof ioredis.Redis);
    const client = new Redis(settings.redisUrl, { connectTimeout: 2_000, maxRetriesPerRequest: 1, enableOfflineQueue: false });
    // Redis down does not take the gateway down: limits are skipped (skipOnError) until it is back.
    let warned = false;
    client.on('error', (error: Error) => {
      if (!warned) app.log.warn({ err: error }, 'rate-limit store (Redis) unreachable; requests are not rate limited until it is back');
      warned = true;
    });
    client.on('ready', () => (warned = false));
    // Start enforcing shared limits with the first request: wait (briefly) for the connection.
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, 2_000);
      client.once('ready', () => {
        clearTimeout(timer);
        resolve();
      });
    });
    redis = client;
  }
  await app.register(rateLimit, { global: false, ...(redis ? { redis, nameSpace: 'archipelago-gateway-' } : {}), skipOnError: true });
  app.addHook('onClose', async () => {
    await redis?.quit().catch(() => redis?.disconnect());
  });
  const timeWindow = settings.rateLimit.windowMs;
  const byAddress = app.createRateLimit({ max: settings.rateLimit.perIp, timeWindow, keyGenerator: (request) => `ip:${request.ip}` });
  const byUser = app.createRateLimit({ max: settings.rateLimit.perUser, timeWindow, keyGenerator: (request) => `user:${request.user?.id ?? request.ip}` });

  const enforce = async (limiter: typeof byAddress, request: FastifyRequest, reply: FastifyReply, who: string) => {
    const result = await limiter(request);
    if (result.isAllowed || !result.isExceeded) return;
    void reply.header('retry-after', String(Math.max(1, result.ttlInSeconds)));
    throw new AppError('RATE_LIMITED', `Rate limit of ${result.max} requests per ${timeWindow / 1000} s ${who} exceeded; retry in ${result.ttlInSeconds} s`);
  };

  return async (request, reply) => {
    await enforce(byAddress, request, reply, 'per address');
    const path = request.url.split('?')[0]!;
    if (publicRoutes.some((prefix) => isUnder(path, prefix))) return;
    await auth.requireUser(request, reply);
    await enforce(byUser, request, reply, 'per user');
  };
}
