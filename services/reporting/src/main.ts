import { loadConfig, runService } from '@archipelago/platform';
import { createAuth, remoteAuthSources } from '@archipelago/platform/auth';
import { serviceDefinitions } from '@archipelago/registry';
import { buildApp } from './app.ts';
import type { ReportingDatabase } from './database.ts';

await runService<ReportingDatabase>({
  service: 'reporting',
  buildApp: (deps) => {
    const config = loadConfig(serviceDefinitions.reporting.config, deps.env);
    return buildApp({
      ...deps,
      auth: createAuth({ sources: remoteAuthSources(deps.peer('iam'), { credentials: deps.credentials }) }),
      maxRetainedBytes: config.REPORTING_MAX_RETAINED_WAL_MB * 1024 * 1024,
    });
  },
});
