import { type Registry, type RouteDefinition } from '@archipelago/registry';
import { ConfigError, peerUrlVariable } from '@archipelago/platform';
import { isUnder } from './paths.ts';

/** A service behind the gateway: where its instances are and the routes it declares. */
export interface Upstream {
  readonly service: string;
  /** The first instance's base URL, where any instance will do (IAM's keys, the API docs). */
  readonly url: string;
  /** Every instance's base URL: `<KEY>_URL` lists them, comma-separated. */
  readonly urls: readonly string[];
  readonly routes: readonly RouteDefinition[];
}

/**
 * Every service that declares routes, with its instances' base URLs from `<KEY>_URL`
 * (`http://127.0.0.1:4104,http://127.0.0.1:4204` for two instances of core).
 */
export function gatewayUpstreams(registry: Registry, env: Readonly<Record<string, string | undefined>>): Upstream[] {
  const missing: { variable: string; message: string }[] = [];
  const upstreams = registry.services.filter((s) => !s.edge && s.routes.length > 0).map((service) => {
    const variable = peerUrlVariable(service.key);
    const urls = (env[variable] ?? '').split(',').map((url) => url.trim().replace(/\/$/, '')).filter(Boolean);
    if (urls.length === 0) missing.push({ variable, message: `is required: the base URL of ${service.key}, e.g. http://127.0.0.1:${service.port} (several, comma-separated, for several instances)` });
    for (const url of urls) if (!/^https?:\/\/[^/]+$/.test(url)) missing.push({ variable, message: `"${url}" is not a base URL (http://host:port)` });
    return { service: service.key, url: urls[0] ?? '', urls, routes: service.routes };
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

/** One instance chosen for one request or connection. */
export interface Lease {
  readonly url: string;
  /** The request is over (answered or failed); safe to call more than once. */
  release(): void;
  /** The instance refused the connection: skip it for a while. */
  refused(): void;
}

/** Chooses among a service's instances. */
export interface Balancer {
  /** The best instance not yet `tried`, or undefined when every instance has been. */
  pick(tried: ReadonlySet<string>): Lease | undefined;
}

/** How long an instance that refused a connection is passed over (then tried again by real traffic). */
export const SKIP_REFUSING_MS = 2_000;

/**
 * Least-pending balancing with passive health checks: each request goes to the instance with the
 * fewest requests in flight (round robin among equals); an instance that refused a connection is
 * passed over for SKIP_REFUSING_MS, and used only when no other remains, so a request fails
 * (503) only once every instance has refused it.
 */
export function createBalancer(urls: readonly string[], now: () => number = Date.now): Balancer {
  const state = urls.map((url) => ({ url, pending: 0, skipUntil: 0 }));
  let turn = 0;
  return {
    pick(tried) {
      const open = state.filter((s) => !tried.has(s.url));
      if (open.length === 0) return undefined;
      const at = now();
      const start = turn++ % state.length;
      // Healthy before skipped, then fewest in flight, then whose turn it is (offset < length keeps the order lexicographic).
      const score = (s: (typeof state)[number]) =>
        (s.skipUntil > at ? 1e9 : 0) + s.pending * state.length + ((state.indexOf(s) - start + state.length) % state.length);
      const chosen = open.reduce((best, s) => (score(s) < score(best) ? s : best));
      chosen.pending++;
      let released = false;
      return {
        url: chosen.url,
        release() {
          if (!released) chosen.pending--;
          released = true;
        },
        refused() {
          chosen.skipUntil = now() + SKIP_REFUSING_MS;
        },
      };
    },
  };
}

/** A balancer per upstream service. */
export function balancersOf(upstreams: readonly Upstream[]): ReadonlyMap<string, Balancer> {
  return new Map(upstreams.map((u) => [u.service, createBalancer(u.urls)]));
}
