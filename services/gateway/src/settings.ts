import Type from 'typebox';
import { loadConfig } from '@archipelago/platform';

/** The gateway's knobs (see .env.example); every one has a working default. */
export interface GatewaySettings {
  /** Origins allowed to call the API from a browser; none by default. */
  readonly corsOrigins: readonly string[];
  /** Rate-limit store shared by gateway instances; in-memory (per instance) when unset. */
  readonly redisUrl?: string;
  readonly rateLimit: { readonly perIp: number; readonly perUser: number; readonly windowMs: number };
  readonly bodyLimitBytes: number;
  readonly upstreamTimeoutMs: number;
}

export const defaultGatewaySettings: GatewaySettings = {
  corsOrigins: [],
  rateLimit: { perIp: 1200, perUser: 1200, windowMs: 60_000 },
  bodyLimitBytes: 1024 * 1024,
  upstreamTimeoutMs: 10_000,
};

const gatewayConfigSchema = Type.Object({
  CORS_ORIGINS: Type.String({ default: '' }),
  REDIS_URL: Type.Optional(Type.String({ pattern: '^rediss?://' })),
  RATE_LIMIT_PER_IP: Type.Integer({ minimum: 1, default: defaultGatewaySettings.rateLimit.perIp }),
  RATE_LIMIT_PER_USER: Type.Integer({ minimum: 1, default: defaultGatewaySettings.rateLimit.perUser }),
  RATE_LIMIT_WINDOW_MS: Type.Integer({ minimum: 100, default: defaultGatewaySettings.rateLimit.windowMs }),
  GATEWAY_BODY_LIMIT: Type.Integer({ minimum: 1024, default: defaultGatewaySettings.bodyLimitBytes }),
  UPSTREAM_TIMEOUT_MS: Type.Integer({ minimum: 100, default: defaultGatewaySettings.upstreamTimeoutMs }),
});

export function gatewaySettingsFromEnv(env: Readonly<Record<string, string | undefined>>): GatewaySettings {
  const config = loadConfig(gatewayConfigSchema, env);
  return {
    corsOrigins: config.CORS_ORIGINS.split(',').map((o) => o.trim()).filter(Boolean),
    redisUrl: config.REDIS_URL,
    rateLimit: { perIp: config.RATE_LIMIT_PER_IP, perUser: config.RATE_LIMIT_PER_USER, windowMs: config.RATE_LIMIT_WINDOW_MS },
    bodyLimitBytes: config.GATEWAY_BODY_LIMIT,
    upstreamTimeoutMs: config.UPSTREAM_TIMEOUT_MS,
  };
}
