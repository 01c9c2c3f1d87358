import pg from 'pg';
import { envPrefix, type Registry, type Service } from '@archipelago/registry';

/** The two login roles of a stateful service. */
export interface ServiceRoles {
  /** Owns the database and schema; runs migrations. */
  readonly owner: string;
  /** Used by the running service: DML only. */
  readonly app: string;
}

/** The roles, and the environment variables carrying their passwords. */
export function serviceRoles(service: Service): ServiceRoles & { ownerPasswordVariable: string; appPasswordVariable: string } {
  const prefix = envPrefix(service.key);
  return {
    owner: `${service.database}_owner`,
    app: `${service.database}_app`,
    ownerPasswordVariable: `${prefix}_OWNER_PASSWORD`,
    appPasswordVariable: `${prefix}_APP_PASSWORD`,
  };
}

/** One idempotent provisioning step, rendered either as psql script or run through `pg`. */
export type ProvisionStep =
  | { readonly kind: 'role'; readonly role: string; readonly passwordVariable: string; readonly searchPath: string }
  | { readonly kind: 'database'; readonly database: string; readonly owner: string }
  | { readonly kind: 'sql'; readonly sql: string };

/** Steps run while connected to one database (`postgres` for cluster-wide steps). */
export interface ProvisionBlock {
  readonly database: string;
  readonly steps: readonly ProvisionStep[];
}

const ident = (name: string) => pg.escapeIdentifier(name);

/**
 * The provisioning plan of docs/architecture.md#islands-and-isolation, derived from the registry: per stateful service an
 * owner role, an app role with DML rights only, a database nobody else may connect to, and a
 * schema named after the service. Every step is safe to run twice.
 */
export function provisioningPlan(services: readonly Service[]): ProvisionBlock[] {
  const stateful = services.filter((s) => s.stateful);
  const cluster: ProvisionStep[] = [];
  const perDatabase: ProvisionBlock[] = [];
  for (const service of stateful) {
    const roles = serviceRoles(service);
    const db = ident(service.database);
    const schema = ident(service.database);
    cluster.push(
      { kind: 'role', role: roles.owner, passwordVariable: roles.ownerPasswordVariable, searchPath: service.database },
      { kind: 'role', role: roles.app, passwordVariable: roles.appPasswordVariable, searchPath: service.database },
      { kind: 'database', database: service.database, owner: roles.owner },
      { kind: 'sql', sql: `REVOKE ALL ON DATABASE ${db} FROM PUBLIC` },
      { kind: 'sql', sql: `GRANT CONNECT, TEMPORARY ON DATABASE ${db} TO ${ident(roles.owner)}, ${ident(roles.app)}` },
    );
    perDatabase.push({
      database: service.database,
      steps: [
        { kind: 'sql', sql: 'REVOKE ALL ON SCHEMA public FROM PUBLIC' },
        { kind: 'sql', sql: `CREATE SCHEMA IF NOT EXISTS ${schema} AUTHORIZATION ${ident(roles.owner)}` },
        { kind: 'sql', sql: `GRANT USAGE ON SCHEMA ${schema} TO ${ident(roles.app)}` },
        {
          kind: 'sql',
          sql: `ALTER DEFAULT PRIVILEGES FOR ROLE ${ident(roles.owner)} IN SCHEMA ${schema} GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO ${ident(roles.app)}`,
        },
        {
          kind: 'sql',
          sql: `ALTER DEFAULT PRIVILEGES FOR ROLE ${ident(roles.owner)} IN SCHEMA ${schema} GRANT USAGE, SELECT ON SEQUENCES TO ${ident(roles.app)}`,
        },
        { kind: 'sql', sql: `GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA ${schema} TO ${ident(roles.app)}` },
        { kind: 'sql', sql: `GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA ${schema} TO ${ident(roles.app)}` },
      ],
    });
  }
  // Service roles have no business in the maintenance and template databases either.
  cluster.push({ kind: 'sql', sql: 'REVOKE CONNECT ON DATABASE postgres FROM PUBLIC' });
  cluster.push({ kind: 'sql', sql: 'REVOKE CONNECT ON DATABASE template1 FROM PUBLIC' });
  return [{ database: 'postgres', steps: cluster }, ...perDatabase];
}

/** Renders the plan as a psql script; passwords are read from the environment with `\getenv`. */
export function renderPsqlScript(blocks: readonly ProvisionBlock[]): string {
  const lines: string[] = ['\\set ON_ERROR_STOP on', ''];
  for (const block of blocks) {
    lines.push(`\\connect ${block.database}`);
    for (const step of block.steps) {
      switch (step.kind) {
        case 'role': {
          const variable = step.passwordVariable.toLowerCase();
          const lit = pg.escapeLiteral(step.role);
          lines.push(
            `\\getenv ${variable} ${step.passwordVariable}`,
            `SELECT format('CREATE ROLE %I LOGIN', ${lit}) WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = ${lit})\\gexec`,
            `SELECT format('ALTER ROLE %I WITH LOGIN PASSWORD %L', ${lit}, :'${variable}')\\gexec`,
            `ALTER ROLE ${ident(step.role)} SET search_path = ${ident(step.searchPath)};`,
          );
          break;
        }
        case 'database': {
          const lit = pg.escapeLiteral(step.database);
          lines.push(
            `SELECT format('CREATE DATABASE %I OWNER %I', ${lit}, ${pg.escapeLiteral(step.owner)}) WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = ${lit})\\gexec`,
          );
          break;
        }
        case 'sql':
          lines.push(`${step.sql};`);
      }
    }
    lines.push('');
  }
  return lines.join('\n');
}

/** Runs the plan through `pg` as a superuser; `passwords` maps each password variable to its value. */
export async function applyProvisioningPlan(
  blocks: readonly ProvisionBlock[],
  connect: (database: string) => pg.ClientConfig,
  passwords: Readonly<Record<string, string>>,
): Promise<void> {
  for (const block of blocks) {
    const client = new pg.Client(connect(block.database));
    client.on('error', () => undefined); // a lost connection fails the step in flight, not the CLI
    await client.connect();
    try {
      for (const step of block.steps) await applyStep(client, step, passwords);
    } finally {
      await client.end();
    }
  }
}

async function applyStep(client: pg.Client, step: ProvisionStep, passwords: Readonly<Record<string, string>>): Promise<void> {
  switch (step.kind) {
    case 'role': {
      const password = passwords[step.passwordVariable];
      if (!password) throw new Error(`No password for role ${step.role}: ${step.passwordVariable} is not set`);
      const exists = await client.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [step.role]);
      if (exists.rowCount === 0) await client.query(`CREATE ROLE ${ident(step.role)} LOGIN`);
      await client.query(`ALTER ROLE ${ident(step.role)} WITH LOGIN PASSWORD ${client.escapeLiteral(password)}`);
      await client.query(`ALTER ROLE ${ident(step.role)} SET search_path = ${ident(step.searchPath)}`);
      return;
    }
    case 'database': {
      const exists = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [step.database]);
      if (exists.rowCount === 0) await client.query(`CREATE DATABASE ${ident(step.database)} OWNER ${ident(step.owner)}`);
      return;
    }
    case 'sql':
      await client.query(step.sql);
  }
}

/** Every password variable the plan needs, for the credentials file and .env.example. */
export function passwordVariables(registry: Registry): string[] {
  return registry.services.filter((s) => s.stateful).flatMap((s) => {
    const roles = serviceRoles(s);
    return [roles.ownerPasswordVariable, roles.appPasswordVariable];
  });
}
