import Type from 'typebox';
import { loadConfig, runService } from '@archipelago/platform';
import { createAuth, remoteAuthSources } from '@archipelago/platform/auth';
import { buildApp } from './app.ts';
import type { ReportingDatabase } from './database.ts';

const reportingConfig = Type.Object({
  IAM_URL: Type.String({ pattern: '^https?://' }),
  REPORTING_MAX_RETAINED_WAL_MB: Type.Integer({ minimum: 0, default: 1024 }),
});

await runService<ReportingDatabase>({
  service: 'reporting',
  buildApp: (deps) => {
    const config = loadConfig(reportingConfig, deps.env);
    return buildApp({
      ...deps,
      auth: createAuth({ sources: remoteAuthSources(config.IAM_URL, { credentials: deps.credentials }) }),
      maxRetainedBytes: config.REPORTING_MAX_RETAINED_WAL_MB * 1024 * 1024,
    });
  },
});
