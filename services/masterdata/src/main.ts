import Type from 'typebox';
import { loadConfig, runService } from '@archipelago/platform';
import { createAuth, remoteAuthSources } from '@archipelago/platform/auth';
import { buildApp } from './app.ts';
import type { MasterdataDatabase } from './database.ts';

const masterdataConfig = Type.Object({ IAM_URL: Type.String({ pattern: '^https?://' }) });

await runService<MasterdataDatabase>({
  service: 'masterdata',
  buildApp: (deps) => buildApp({ ...deps, auth: createAuth({ sources: remoteAuthSources(loadConfig(masterdataConfig, deps.env).IAM_URL, { credentials: deps.credentials }) }) }),
});
