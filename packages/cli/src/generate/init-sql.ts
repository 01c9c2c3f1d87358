import type { Service } from '@archipelago/registry';
import { provisioningPlan, renderPsqlScript } from '@archipelago/platform/provision';
import { generatedHeader } from './header.ts';

/** `infra/init-databases.sql`: every service database on one cluster (development layout). */
export function initDatabasesSql(services: readonly Service[]): string {
  return (
    generatedHeader('--', 'database initialization') +
    [
      '-- One database, one owner role (migrations) and one app role (DML only) per service;',
      '-- nobody else may connect. Role passwords come from the environment (psql \\getenv),',
      '-- e.g. CORE_OWNER_PASSWORD and CORE_APP_PASSWORD. Safe to run twice:',
      '--   psql -v ON_ERROR_STOP=1 -U postgres -f infra/init-databases.sql',
      '',
    ].join('\n') +
    renderPsqlScript(provisioningPlan(services))
  );
}

/** `infra/postgres/<db>.sql`: one service's database on its own instance (production layout). */
export function initServiceSql(service: Service): string {
  return (
    generatedHeader('--', `${service.database} database initialization (production layout)`) +
    renderPsqlScript(provisioningPlan([service]))
  );
}
