import Type from 'typebox';
import { loadConfig, runService } from '@archipelago/platform';
import { createAuth, remoteAuthSources } from '@archipelago/platform/auth';
import { buildApp } from './app.ts';
import type { CoreDatabase } from './database.ts';

const coreConfig = Type.Object({
  MASTERDATA_URL: Type.String({ pattern: '^https?://' }),
  IAM_URL: Type.String({ pattern: '^https?://' }),
  LOOKUP_RECONCILE_AT: Type.String({ pattern: '^(([01][0-9]|2[0-3]):[0-5][0-9]|off)$', default: '02:00', description: 'HH:MM (UTC) or off' }),
});

await runService<CoreDatabase>({
  service: 'core',
  buildApp: (deps) => {
    const config = loadConfig(coreConfig, deps.env);
    return buildApp({
      ...deps,
      peers: { masterdata: config.MASTERDATA_URL, iam: config.IAM_URL },
      auth: createAuth({ sources: remoteAuthSources(config.IAM_URL, { credentials: deps.credentials }) }),
      reconcileAt: config.LOOKUP_RECONCILE_AT,
    });
  },
});
