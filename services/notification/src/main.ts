import { runService } from '@archipelago/platform';
import { createAuth, remoteAuthSources } from '@archipelago/platform/auth';
import { buildApp } from './app.ts';
import type { NotificationDatabase } from './database.ts';

await runService<NotificationDatabase>({
  service: 'notification',
  buildApp: (deps) => buildApp({ ...deps, auth: createAuth({ sources: remoteAuthSources(deps.peer('iam'), { credentials: deps.credentials }) }) }),
});
