import { runStatelessService } from '@archipelago/platform';
import { loadRegistry } from '@archipelago/registry';
import { buildApp } from './app.ts';
import { gatewaySettingsFromEnv } from './settings.ts';
import { gatewayUpstreams } from './upstreams.ts';

await runStatelessService({
  service: 'gateway',
  buildApp: ({ logger, env, credentials }) => buildApp({ logger, credentials, upstreams: gatewayUpstreams(loadRegistry(), env), settings: gatewaySettingsFromEnv(env) }),
});
