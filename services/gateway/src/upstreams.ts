import { type Registry, type RouteDefinition } from '@archipelago/registry';
import { ConfigError, peerUrlVariable } from '@archipelago/platform';
import { isUnder } from './paths.ts';

/** A service behind the gateway: where it is and the routes it declares. */
export interface Upstream {
  readonly service: string;
  readonly url: string;
  readonly routes: readonly RouteDefinition[];
}

/** Every service that declares routes, with its base URL from `<KEY>_URL`. */
export function gatewayUpstreams(registry: Registry, env: Readonly<Record<string, string | undefined>>): Upstream[] {
  const missing: { variable: string; message: string }[] = [];
  const upstreams = registry.services.filter((s) => !s.edge && s.routes.length > 0).map((service) => {
    const variable = peerUrlVariable(service.key);
    const url = env[variable];
    if (!url) missing.push({ variable, message: `is required: the base URL of ${service.key}, e.g. http://127.0.0.1:${service.port}` });
    return { service: service.key, url: (url ?? '').replace(/\/$/, ''), routes: service.routes };
  });
  if (missing.length > 0) throw new ConfigError(missing);
  return upstreams;
}

/** The routes the gateway passes on without a token, as declared (`public: true`). */
export function publicPrefixes(upstreams: readonly Upstream[]): string[] {
  return upstreams.flatMap((u) => u.routes.filter((r) => r.public).map((r) => r.prefix));
}

/** The only routes whose connections may be upgraded (`websocket: true`). */
export function websocketPrefixes(upstreams: readonly Upstream[]): string[] {
  return upstreams.flatMap((u) => u.routes.filter((r) => r.websocket).map((r) => r.prefix));
}

/** Whether a path is on a public route. */
export const isPublicPath = (upstreams: readonly Upstream[], path: string): boolean => publicPrefixes(upstreams).some((p) => isUnder(path, p));
