import Type from 'typebox';
import type { HttpServer } from '../http.ts';
import { OPERATOR_ONLY } from '../internal-auth/guard.ts';
import type { Jobs } from './scheduler.ts';

/**
 * Internal (not routed by the gateway) endpoints of a service's jobs, used by `archipelago jobs`:
 * their status, the same on every instance, and a manual run (an operator's action).
 */
export function registerJobRoutes(app: HttpServer, jobs: Jobs): void {
  app.get('/internal/v1/jobs', { schema: { hide: true } }, async () => ({ service: jobs.service, jobs: await jobs.list() }));
  app.post(
    '/internal/v1/jobs/:name/run',
    {
      config: OPERATOR_ONLY,
      schema: { hide: true, params: Type.Object({ name: Type.String({ pattern: '^[a-z][a-z0-9-]*(\\.[a-z][a-z0-9-]*)*$', maxLength: 100 }) }) },
    },
    async (request) => ({ job: await jobs.run(request.params.name) }),
  );
}
