import Type from 'typebox';
import type { HttpServer } from '../http.ts';
import { OPERATOR_ONLY } from '../internal-auth/guard.ts';
import type { LookupSync } from './sync.ts';

/**
 * Internal (not routed by the gateway) endpoints of a service's lookups, used by
 * `archipelago sync`: drift report and on-demand reconciliation. (Their consumers' state is at
 * `registerConsumerRoutes`' `/internal/v1/consumers`.)
 */
export function registerLookupRoutes(app: HttpServer, sync: LookupSync): void {
  const Selection = Type.Object({ lookup: Type.Optional(Type.String({ pattern: '^[a-z_]+_lookup$' })) }, { additionalProperties: false });
  app.get('/internal/v1/lookups/drift', { schema: { hide: true, querystring: Selection } }, async (request) => ({
    reports: await sync.drift(request.query.lookup),
  }));
  app.post('/internal/v1/lookups/reconcile', { config: OPERATOR_ONLY, schema: { hide: true, querystring: Selection } }, async (request) => ({
    reports: await sync.reconcile(request.query.lookup),
  }));
}
