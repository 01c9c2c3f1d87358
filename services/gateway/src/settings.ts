import { backingConfigSchemas, loadConfig } from '@archipelago/platform';
import { serviceDefinitions } from '@archipelago/registry';

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

/** The gateway's variables, declared once in the registry (`config`, and `uses: ['redis']`). */
export function gatewaySettingsFromEnv(env: Readonly<Record<string, string | undefined>>): GatewaySettings {
  const config = loadConfig(serviceDefinitions.gateway.config, env);
  return {
    corsOrigins: config.CORS_ORIGINS.split(',').map((o) => o.trim()).filter(Boolean),
    redisUrl: loadConfig(backingConfigSchemas.redis, env).REDIS_URL,
    rateLimit: { perIp: config.RATE_LIMIT_PER_IP, perUser: config.RATE_LIMIT_PER_USER, windowMs: config.RATE_LIMIT_WINDOW_MS },
    bodyLimitBytes: config.GATEWAY_BODY_LIMIT,
    upstreamTimeoutMs: config.UPSTREAM_TIMEOUT_MS,
  };
}

/** The settings with nothing set: the declared defaults. */
export const defaultGatewaySettings: GatewaySettings = gatewaySettingsFromEnv({});
