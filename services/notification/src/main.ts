import Type from 'typebox';
import { loadConfig, runService } from '@archipelago/platform';
import { createAuth, remoteAuthSources } from '@archipelago/platform/auth';
import { buildApp } from './app.ts';
import type { NotificationDatabase } from './database.ts';

const notificationConfig = Type.Object({
  IAM_URL: Type.String({ pattern: '^https?://' }),
  CORE_URL: Type.String({ pattern: '^https?://' }),
  MASTERDATA_URL: Type.String({ pattern: '^https?://' }),
});

await runService<NotificationDatabase>({
  service: 'notification',
  buildApp: (deps) => {
    const config = loadConfig(notificationConfig, deps.env);
    return buildApp({
      ...deps,
      peers: { iam: config.IAM_URL, core: config.CORE_URL, masterdata: config.MASTERDATA_URL },
      auth: createAuth({ sources: remoteAuthSources(config.IAM_URL, { credentials: deps.credentials }) }),
    });
  },
});
