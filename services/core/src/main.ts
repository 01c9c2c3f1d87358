import Type from 'typebox';
import { loadConfig, runService } from '@archipelago/platform';
import { createAuth, remoteAuthSources } from '@archipelago/platform/auth';
import { buildApp } from './app.ts';
import type { CoreDatabase } from './database.ts';

const coreConfig = Type.Object({
  MASTERDATA_URL: Type.String({ pattern: '^https?://' }),
  IAM_URL: Type.String({ pattern: '^https?://' }),
});

await runService<CoreDatabase>({
  service: 'core',
  buildApp: (deps) => {
    const config = loadConfig(coreConfig, deps.env);
    return buildApp({
      ...deps,
      peers: { masterdata: config.MASTERDATA_URL, iam: config.IAM_URL },
      auth: createAuth({ sources: remoteAuthSources(config.IAM_URL, { credentials: deps.credentials }) }),
    });
  },
});
