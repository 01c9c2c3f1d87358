import { envPrefix, type Registry } from '@archipelago/registry';
import { ConfigError } from '@archipelago/platform';

/** A service behind the gateway: where it is and which public prefixes it owns. */
export interface Upstream {
  readonly service: string;
  readonly url: string;
  readonly routes: readonly string[];
}

/** Every service the gateway depends on, with its base URL from `<KEY>_URL`. */
export function gatewayUpstreams(registry: Registry, env: Readonly<Record<string, string | undefined>>): Upstream[] {
  const gateway = registry.service('gateway');
  const missing: { variable: string; message: string }[] = [];
  const upstreams = (gateway.dependsOn ?? []).map((key) => {
    const variable = `${envPrefix(key)}_URL`;
    const url = env[variable];
    if (!url) missing.push({ variable, message: `is required: the base URL of ${key}, e.g. http://127.0.0.1:${registry.service(key).port}` });
    return { service: key, url: (url ?? '').replace(/\/$/, ''), routes: registry.service(key).routes };
  });
  if (missing.length > 0) throw new ConfigError(missing);
  return upstreams;
}
