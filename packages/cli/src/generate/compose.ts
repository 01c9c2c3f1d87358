import { envPrefix, type BackingService, type Registry, type Service } from '@archipelago/registry';
import { COMPOSE_VALUE, isDerived, peerUrlVariable, serviceConfigSchemaOf } from '@archipelago/platform/config';
import { serviceRoles } from '@archipelago/platform/provision';
import { PRIVATE_KEY_VARIABLE, PUBLIC_KEYS_VARIABLE, privateKeyVariableOf } from '@archipelago/platform/internal-auth';
import { stringify } from 'yaml';
import { generatedHeader } from './header.ts';

type Layout = 'development' | 'production';
type ComposeService = Record<string, unknown>;

const POSTGRES_IMAGE = 'postgres:17-alpine';
const POSTGRES_COMMAND = ['postgres', '-c', 'wal_level=logical', '-c', 'max_wal_senders=20', '-c', 'max_replication_slots=20'];

const required = (variable: string) => `\${${variable}:?set ${variable} in .env (see .env.example)}`;

const databaseHost = (service: Service, layout: Layout) => (layout === 'development' ? 'postgres' : `postgres-${service.key}`);

function databaseUrl(service: Service, layout: Layout, role: 'owner' | 'app'): string {
  const roles = serviceRoles(service);
  const user = role === 'owner' ? roles.owner : roles.app;
  const password = role === 'owner' ? roles.ownerPasswordVariable : roles.appPasswordVariable;
  return `postgresql://${user}:\${${password}}@${databaseHost(service, layout)}:5432/${service.database}`;
}

const uses = (s: Service, backing: BackingService) => s.uses?.includes(backing) ?? false;

const text = (value: unknown) => (typeof value === 'string' ? value : JSON.stringify(value));

// An operator's variable goes through from .env, with the schema's default when unset.
function passThrough(variable: string, schema: Record<string, unknown>, required_: boolean): string {
  if (schema.default !== undefined) return `\${${variable}:-${text(schema.default).replace(/\$/g, '$$$$')}}`;
  return required_ ? required(variable) : `\${${variable}:-}`;
}

/** A service's environment in a compose file: one entry per variable its schema reads. */
function serviceVariables(registry: Registry, service: Service, layout: Layout): Record<string, string> {
  const derived: Record<string, string> = {
    HOST: '0.0.0.0',
    PORT: String(service.port),
    // Its own private key only, and every principal's public key (`npm run cli -- credentials env >> .env`).
    [PRIVATE_KEY_VARIABLE]: required(privateKeyVariableOf(service.key)),
    [PUBLIC_KEYS_VARIABLE]: required(PUBLIC_KEYS_VARIABLE),
    ...(service.stateful ? { DATABASE_URL: databaseUrl(service, layout, 'app') } : {}),
  };
  for (const peer of [...(service.dependsOn ?? []), ...(service.calls ?? [])]) {
    const target = registry.service(peer);
    derived[peerUrlVariable(peer)] = `http://${target.hostname}:${target.port}`;
  }
  const schema = serviceConfigSchemaOf(service);
  const environment: Record<string, string> = { NODE_ENV: 'production' };
  for (const [variable, property] of Object.entries(schema.properties)) {
    const options = property as Record<string, unknown>;
    if (isDerived(property)) {
      const value = derived[variable];
      if (value === undefined) throw new Error(`compose: no value for ${service.key}'s derived variable ${variable}`);
      environment[variable] = value;
    } else if (typeof options[COMPOSE_VALUE] === 'string') {
      environment[variable] = options[COMPOSE_VALUE];
    } else {
      environment[variable] = passThrough(variable, options, schema.required?.includes(variable) ?? false);
    }
  }
  return environment;
}

function postgresService(services: readonly Service[], initScript: string, volume: string): ComposeService {
  const passwords = Object.fromEntries(
    services.flatMap((s) => {
      const roles = serviceRoles(s);
      return [roles.ownerPasswordVariable, roles.appPasswordVariable].map((v) => [v, required(v)]);
    }),
  );
  return {
    image: POSTGRES_IMAGE,
    restart: 'unless-stopped',
    command: POSTGRES_COMMAND,
    environment: { POSTGRES_USER: 'postgres', POSTGRES_PASSWORD: required('POSTGRES_PASSWORD'), ...passwords },
    volumes: [`${volume}:/var/lib/postgresql/data`, `${initScript}:/docker-entrypoint-initdb.d/01-init.sql:ro`],
    healthcheck: { test: ['CMD-SHELL', 'pg_isready -U postgres'], interval: '5s', timeout: '3s', retries: 10 },
  };
}

function appService(registry: Registry, service: Service, layout: Layout): ComposeService {
  const environment = serviceVariables(registry, service, layout);
  const dependsOn: Record<string, { condition: string }> = {};
  if (service.stateful) {
    dependsOn[databaseHost(service, layout)] = { condition: 'service_healthy' };
    dependsOn.migrate = { condition: 'service_completed_successfully' };
  }
  for (const dep of service.dependsOn ?? []) dependsOn[registry.service(dep).hostname] = { condition: 'service_healthy' };
  for (const backing of ['redis', 'rabbitmq'] as const) {
    if (uses(service, backing)) dependsOn[backing] = { condition: 'service_healthy' };
  }
  return {
    build: { context: '..', dockerfile: 'infra/Dockerfile' },
    image: `archipelago/app:latest`,
    command: ['node', '--enable-source-maps', `dist/services/${service.key}/src/main.mjs`],
    hostname: service.hostname,
    restart: 'unless-stopped',
    environment,
    ...(Object.keys(dependsOn).length > 0 ? { depends_on: dependsOn } : {}),
    // Production runs the registry's replicas (the distributed topology); development one of each, like `npm start`.
    ...(layout === 'production' && (service.replicas ?? 1) > 1 ? { deploy: { replicas: service.replicas } } : {}),
    ...(service.key === 'gateway' ? { ports: [`\${GATEWAY_PUBLIC_PORT:-${service.port}}:${service.port}`] } : {}),
    healthcheck: {
      test: ['CMD', 'node', '-e', `fetch('http://127.0.0.1:${service.port}/health/${service.stateful ? 'ready' : 'live'}').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))`],
      interval: '5s',
      timeout: '3s',
      retries: 12,
    },
  };
}

// A one-shot container that migrates and seeds every database, in dependency order.
function migrateService(stateful: readonly Service[], layout: Layout): ComposeService {
  const environment: Record<string, string> = { NODE_ENV: 'production' };
  const dependsOn: Record<string, { condition: string }> = {};
  for (const service of stateful) {
    environment[`${envPrefix(service.key)}_DATABASE_URL`] = databaseUrl(service, layout, 'app');
    environment[`${envPrefix(service.key)}_OWNER_DATABASE_URL`] = databaseUrl(service, layout, 'owner');
    dependsOn[databaseHost(service, layout)] = { condition: 'service_healthy' };
  }
  return {
    build: { context: '..', dockerfile: 'infra/Dockerfile' },
    image: 'archipelago/app:latest',
    command: ['node', '--enable-source-maps', 'dist/packages/cli/src/main.mjs', 'db', 'migrate', '--seed'],
    restart: 'no',
    environment,
    depends_on: dependsOn,
  };
}

/** A compose file for one layout: one shared PostgreSQL (development) or one per service (production). */
export function composeFile(registry: Registry, layout: Layout): string {
  const stateful = registry.services.filter((s) => s.stateful);
  const services: Record<string, ComposeService> = {};
  const volumes: Record<string, Record<string, never>> = {};
  if (layout === 'development') {
    services.postgres = { ...postgresService(stateful, './init-databases.sql', 'postgres_data'), ports: ['127.0.0.1:5433:5432'] };
    volumes.postgres_data = {};
  } else {
    for (const service of stateful) {
      services[`postgres-${service.key}`] = postgresService([service], `./postgres/${service.database}.sql`, `postgres_${service.database}`);
      volumes[`postgres_${service.database}`] = {};
    }
  }
  if (registry.services.some((s) => uses(s, 'redis'))) {
    services.redis = {
      image: 'redis:7-alpine',
      restart: 'unless-stopped',
      healthcheck: { test: ['CMD', 'redis-cli', 'ping'], interval: '5s', timeout: '3s', retries: 10 },
    };
  }
  if (registry.services.some((s) => uses(s, 'rabbitmq'))) {
    services.rabbitmq = {
      image: 'rabbitmq:4-management-alpine',
      restart: 'unless-stopped',
      environment: { RABBITMQ_DEFAULT_USER: 'archipelago', RABBITMQ_DEFAULT_PASS: required('RABBITMQ_PASSWORD') },
      healthcheck: { test: ['CMD', 'rabbitmq-diagnostics', '-q', 'ping'], interval: '10s', timeout: '5s', retries: 10 },
    };
  }
  services.migrate = migrateService(stateful, layout);
  for (const service of registry.services) services[service.hostname] = appService(registry, service, layout);

  const what = layout === 'development' ? 'compose file, development layout (one PostgreSQL, one database per service)' : 'compose file, production layout (one PostgreSQL instance per service, replicas as the registry says)';
  // No top-level `name`: the schema we validate against predates it; .env.example sets COMPOSE_PROJECT_NAME.
  return generatedHeader('#', what) + stringify({ services, volumes }, { lineWidth: 0 });
}
