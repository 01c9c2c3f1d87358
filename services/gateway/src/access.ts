import type { FastifyReply, FastifyRequest } from 'fastify';
import { AppError, type HttpServer } from '@archipelago/platform';
import type { Auth } from '@archipelago/platform/auth';
import { isUnder } from './paths.ts';
import { rateCounter, type WindowCount } from './rate-limit-store.ts';
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
  const count = rateCounter(redis, 'archipelago-gateway-');
  const timeWindow = settings.rateLimit.windowMs;
  // Over `max` requests in the key's window: a 429 with the seconds left in it.
  const limit = ({ current, ttl }: WindowCount, max: number, reply: FastifyReply, who: string): void => {
    if (current <= max) return;
    const wait = Math.ceil(ttl / 1000);
    void reply.header('retry-after', String(Math.max(1, wait)));
    throw new AppError('RATE_LIMITED', `Rate limit of ${max} requests per ${timeWindow / 1000} s ${who} exceeded; retry in ${wait} s`);
  };
  // Counted in this process, the check is synchronous: no promise per request unless Redis counts.
  const enforce = (key: string, max: number, reply: FastifyReply, who: string): Promise<void> | void => {
    const counted = count(key, timeWindow);
    return 'then' in counted ? counted.then((c) => limit(c, max, reply, who)) : limit(counted, max, reply, who);
  };

  return {
    async guard(request, reply) {
      await enforce(`ip:${request.ip}`, settings.rateLimit.perIp, reply, 'per address');
      const path = request.url.split('?')[0]!;
      if (publicRoutes.some((prefix) => isUnder(path, prefix))) return;
      await auth.requireUser(request, reply);
      await enforce(`user:${request.user?.id ?? request.ip}`, settings.rateLimit.perUser, reply, 'per user');
    },
    async admitUpgrade(address) {
      const { current, ttl } = await count(`upgrade:${address}`, timeWindow);
      return current > settings.rateLimit.perIp ? Math.max(1, Math.ceil(ttl / 1000)) : undefined;
    },
  };
}
