import rateLimit from '@fastify/rate-limit';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { AppError, type HttpServer } from '@archipelago/platform';
import type { Auth } from '@archipelago/platform/auth';
import { isUnder } from './paths.ts';
import { rateLimitStore } from './rate-limit-store.ts';
import type { GatewaySettings } from './settings.ts';

/** Whether a WebSocket upgrade from an address may go on: undefined if so, else the seconds to wait (Retry-After). */
export type UpgradeAdmission = (address: string) => Promise<number | undefined>;

/**
 * The gateway's checks before proxying, as one onRequest hook: a per-address rate limit, the
 * token (on every route but the ones the registry declares `public`), then a per-user rate limit. Services check the
 * token and the permissions again: the gateway is not the only line. WebSocket upgrades never
 * reach a route: `admitUpgrade` gives them the per-address limit (the token travels inside the
 * Socket.IO handshake, after the upgrade, and the service checks it).
 */
export async function accessGuard(
  app: HttpServer,
  auth: Auth,
  settings: GatewaySettings,
  publicRoutes: readonly string[],
): Promise<{ guard: (request: FastifyRequest, reply: FastifyReply) => Promise<void>; admitUpgrade: UpgradeAdmission }> {
  // Redis down does not take the gateway down, nor the limits off: this process counts meanwhile.
  // ioredis is loaded only when configured: the embedded default does without it (memory, start time).
  const redis = settings.redisUrl ? (await import('@archipelago/platform/redis')).connectRedis(settings.redisUrl, { name: 'gateway.rate-limits', logger: app.log, app }) : undefined;
  // Start enforcing shared limits with the first request: wait (briefly) for the connection.
  await redis?.whenReady(2_000);
  await app.register(rateLimit, { global: false, store: rateLimitStore(redis, 'archipelago-gateway-') });
  const timeWindow = settings.rateLimit.windowMs;
  const byAddress = app.createRateLimit({ max: settings.rateLimit.perIp, timeWindow, keyGenerator: (request) => `ip:${request.ip}` });
  const byUser = app.createRateLimit({ max: settings.rateLimit.perUser, timeWindow, keyGenerator: (request) => `user:${request.user?.id ?? request.ip}` });

  const enforce = async (limiter: typeof byAddress, request: FastifyRequest, reply: FastifyReply, who: string) => {
    const result = await limiter(request);
    if (result.isAllowed || !result.isExceeded) return;
    void reply.header('retry-after', String(Math.max(1, result.ttlInSeconds)));
    throw new AppError('RATE_LIMITED', `Rate limit of ${result.max} requests per ${timeWindow / 1000} s ${who} exceeded; retry in ${result.ttlInSeconds} s`);
  };

  const upgrades = app.createRateLimit({ max: settings.rateLimit.perIp, timeWindow, keyGenerator: (request) => `upgrade:${request.ip}` });

  return {
    async guard(request, reply) {
      await enforce(byAddress, request, reply, 'per address');
      const path = request.url.split('?')[0]!;
      if (publicRoutes.some((prefix) => isUnder(path, prefix))) return;
      await auth.requireUser(request, reply);
      await enforce(byUser, request, reply, 'per user');
    },
    async admitUpgrade(address) {
      // The limiter reads only these of a request (its key, the route's rate-limit group).
      const result = await upgrades({ ip: address, routeOptions: { config: {} } } as unknown as FastifyRequest);
      return result.isAllowed || !result.isExceeded ? undefined : Math.max(1, result.ttlInSeconds);
    },
  };
}
