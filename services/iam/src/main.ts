import { runService } from '@archipelago/platform';
import { buildApp } from './app.ts';
import type { IamDatabase } from './database.ts';
import { iamSettingsFromEnv } from './settings.ts';

await runService<IamDatabase>({ service: 'iam', buildApp: (deps) => buildApp({ ...deps, settings: iamSettingsFromEnv(deps.env, deps.peer('masterdata')) }) });
