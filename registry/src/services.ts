import type { ServiceDefinition } from './types.ts';

/**
 * ─── Service registry — the single source of truth ───────────────────────────
 * Every service, its port, database, routes, dependencies, events, lookup tables, scheduled
 * jobs and reporting publications are declared here once. `npm run generate` derives infra/ from it.
 */
export const serviceDefinitions = {
  // ── Platform layer ──────────────────────────────────────────────────────────
  iam: {
    hostname: 'iam',
    port: 4100,
    database: 'iam',
    layer: 'platform',
    label: 'Identity and access',
    routes: ['/api/v1/auth', '/api/v1/users', '/api/v1/roles', '/api/v1/permissions', '/api/v1/policies', '/.well-known/jwks.json'],
    // A user's department_code is checked against master data, which itself starts after IAM.
    calls: ['masterdata'],
    events: {
      publishes: ['user.created', 'user.updated', 'user.deleted', 'role.permissions-changed', 'user.password-reset-requested'],
    },
    jobs: [
      { name: 'outbox.prune', schedule: '0 * * * *', description: 'delete outbox events older than 7 days (consumers that needed them get a 410)' },
      { name: 'idempotency.prune', schedule: '15 * * * *', description: 'delete Idempotency-Keys past their 24 h' },
      { name: 'audit.purge', schedule: '30 3 * * *', description: 'delete auth audit entries older than 2 years' },
    ],
    // Never published: password hashes, sessions, refresh/API/reset-token hashes, signing keys,
    // outbox, idempotency keys and job status.
    reporting: { publishes: [{ table: 'users', exclude: ['password_hash'] }, 'roles', 'user_roles', 'permissions', 'role_permissions'] },
  },
  notification: {
    hostname: 'notification',
    port: 4101,
    database: 'notification',
    layer: 'platform',
    label: 'Notifications',
    routes: ['/api/v1/notifications', '/socket.io'],
    dependsOn: ['iam'],
    needsRedis: true,
    events: {
      consumes: [{ from: 'core', mode: 'group', types: ['order.created', 'order.status-changed'] }],
    },
    reporting: { publishes: ['notifications'] },
  },
  masterdata: {
    hostname: 'masterdata',
    port: 4102,
    database: 'masterdata',
    layer: 'shared',
    label: 'Master data',
    routes: [
      '/api/v1/labels',
      '/api/v1/regions',
      '/api/v1/districts',
      '/api/v1/sub-districts',
      '/api/v1/departments',
      '/api/v1/classification-codes',
    ],
    dependsOn: ['iam'],
    events: {
      publishes: [
        'label.created', 'label.updated', 'label.deleted',
        'region.created', 'region.updated', 'region.deleted',
        'district.created', 'district.updated', 'district.deleted',
        'sub-district.created', 'sub-district.updated', 'sub-district.deleted',
        'department.created', 'department.updated', 'department.deleted',
        'classification-code.created', 'classification-code.updated', 'classification-code.deleted',
      ],
    },
    jobs: [
      { name: 'outbox.prune', schedule: '0 * * * *', description: 'delete outbox events older than 7 days (consumers that needed them get a 410)' },
      { name: 'idempotency.prune', schedule: '15 * * * *', description: 'delete Idempotency-Keys past their 24 h' },
    ],
    reporting: { publishes: ['labels', 'regions', 'districts', 'sub_districts', 'departments', 'classification_codes'] },
  },
  // ── Domain layer ────────────────────────────────────────────────────────────
  core: {
    hostname: 'core',
    port: 4104,
    database: 'core',
    layer: 'domain',
    label: 'Core records and orders',
    routes: ['/api/v1/resources', '/api/v1/orders', '/api/v1/engagements', '/api/v1/intakes', '/api/v1/records', '/api/v1/reports'],
    dependsOn: ['iam', 'masterdata'],
    events: {
      publishes: ['order.created', 'order.status-changed', 'resource.created', 'resource.updated', 'resource.deleted'],
      consumes: [
        // The lookup tables: written in core's database, once per event across core's instances.
        { from: 'masterdata', mode: 'group', types: ['label.*', 'region.*', 'district.*', 'department.*', 'classification-code.*'] },
        // Each instance drops its own cached users and permissions: every instance must see every event.
        { from: 'iam', mode: 'broadcast', types: ['user.updated', 'user.deleted', 'role.permissions-changed'] },
      ],
    },
    lookups: [
      { table: 'labels_lookup', from: 'masterdata', entity: 'label', key: 'code', columns: ['label', 'display_name', 'abbreviation', 'display_order', 'is_active'] },
      { table: 'regions_lookup', from: 'masterdata', entity: 'region', key: 'code', columns: ['name', 'zone', 'is_active'] },
      { table: 'districts_lookup', from: 'masterdata', entity: 'district', key: 'code', columns: ['name', 'region_code', 'is_active'] },
      { table: 'departments_lookup', from: 'masterdata', entity: 'department', key: 'code', columns: ['name', 'is_active'] },
      { table: 'classification_codes_lookup', from: 'masterdata', entity: 'classification-code', key: 'code', columns: ['description', 'category', 'is_active'] },
    ],
    jobs: [
      { name: 'outbox.prune', schedule: '0 * * * *', description: 'delete outbox events older than 7 days (consumers that needed them get a 410)' },
      { name: 'idempotency.prune', schedule: '15 * * * *', description: 'delete Idempotency-Keys past their 24 h' },
      {
        name: 'lookups.reconcile', schedule: '0 2 * * *', scheduleVariable: 'LOOKUP_RECONCILE_AT',
        description: "repair every lookup table from its master's export (seed 000's daily 02:00)",
      },
    ],
    reporting: { publishes: ['resources', 'resource_addresses', 'orders'] },
  },
  reporting: {
    hostname: 'reporting',
    port: 4105,
    database: 'reporting',
    layer: 'platform',
    label: 'Reporting',
    routes: ['/api/v1/reporting'],
    dependsOn: ['iam'],
  },
  // ── Shared layer: the stateless edge ────────────────────────────────────────
  gateway: {
    hostname: 'gateway',
    port: 4110,
    database: '',
    layer: 'shared',
    label: 'API gateway',
    routes: [],
    dependsOn: ['iam', 'masterdata', 'core', 'notification', 'reporting'],
  },
} as const satisfies Record<string, ServiceDefinition>;

export type ServiceKey = keyof typeof serviceDefinitions;
