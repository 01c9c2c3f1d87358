import Type from 'typebox';
import { coreEvents, iamEvents, masterdataEvents } from './events.ts';
import type { ServiceDefinition } from './types.ts';

/**
 * ─── Service registry — the single source of truth ───────────────────────────
 * Every service, its port, database, routes (public / WebSocket flags), permissions, dependencies,
 * configuration (TypeBox `config`, backing services it `uses`), events, lookup tables, scheduled
 * jobs and reporting publications are declared here once. The platform, the CLI's `npm start`, the
 * gateway and IAM's seed read it; `npm run generate` derives infra/ and .env.example from it.
 */
export const serviceDefinitions = {
  // ── Platform layer ──────────────────────────────────────────────────────────
  iam: {
    hostname: 'iam',
    port: 4100,
    database: 'iam',
    layer: 'platform',
    label: 'Identity and access',
    routes: [
      { prefix: '/api/v1/auth' },
      // Signing in and what leads to it: no token yet.
      { prefix: '/api/v1/auth/login', public: true },
      { prefix: '/api/v1/auth/refresh', public: true },
      { prefix: '/api/v1/auth/logout', public: true },
      { prefix: '/api/v1/auth/password-reset', public: true },
      // The page a reset link opens, and its form's post.
      { prefix: '/reset-password', public: true },
      { prefix: '/api/v1/users' },
      { prefix: '/api/v1/roles' },
      { prefix: '/api/v1/permissions' },
      { prefix: '/api/v1/policies' },
      { prefix: '/.well-known/jwks.json', public: true },
    ],
    // A user's department_code is checked against master data, which itself starts after IAM.
    calls: ['masterdata'],
    permissions: ['users:read', 'users:write', 'roles:read', 'roles:write', 'policies:read', 'policies:write'],
    // Password-reset links are mailed.
    uses: ['mail'],
    config: Type.Object({
      JWT_ACCESS_TTL_SECONDS: Type.Integer({ minimum: 30, maximum: 86_400, default: 600, description: 'lifetime of an access token' }),
      JWT_PUBLISH_LEAD_SECONDS: Type.Integer({ minimum: 0, maximum: 86_400, default: 60, description: 'a rotated key is published this long before it signs' }),
      IAM_SIGNING_KEY_SECRET: Type.Optional(Type.String({ minLength: 16, description: 'set: private signing keys are stored AES-256-GCM encrypted' })),
      PASSWORD_RESET_URL: Type.String({
        default: 'http://127.0.0.1:4110/reset-password?token=',
        description: "the reset link is this URL with the token appended; npm start: the gateway's port",
      }),
    }),
    // Every service that verifies tokens follows its user and role changes (a broadcast the platform starts).
    identity: true,
    events: { publishes: iamEvents },
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
    // Sockets of one user may sit on either instance: deliveries and badges cross by the database (or Redis).
    replicas: 2,
    routes: [{ prefix: '/api/v1/notifications' }, { prefix: '/socket.io', public: true, websocket: true }],
    dependsOn: ['iam'],
    // Core's order events (and the orders_lookup's export); masterdata checks a notification's department.
    calls: ['core', 'masterdata'],
    // Everyone reads their own notifications (and sets their own state of them); creating one directly is the admin's.
    permissions: ['notifications:read', 'notifications:write'],
    // Archives go to an S3-compatible store when OBJECT_STORAGE_URL is set, else to a directory;
    // badge counts shared by the instances and one Socket.IO cluster with REDIS_URL (in-process, per instance, without).
    uses: ['objectStorage', 'redis'],
    // A fan-out to 1,000 sockets allocates about a young generation of 1 MB: at 1 MB it scavenged
    // 1.4 times per order, mostly inside the fan-out, at 8 MB 0.2 (bench/README.md, "Memory at rest").
    semiSpaceMb: 8,
    config: Type.Object({
      NOTIFICATION_RETENTION_DAYS: Type.Integer({ minimum: 1, default: 30, description: 'notifications older than this many days are archived, then deleted' }),
      NOTIFICATION_ARCHIVE_KEEP_DAYS: Type.Integer({ minimum: 1, default: 365, description: 'archives older than this many days are deleted' }),
      NOTIFICATION_ARCHIVE_BUCKET: Type.String({ minLength: 3, default: 'archipelago-archives', description: 'bucket of the archives in the S3-compatible store' }),
      NOTIFICATION_ARCHIVE_DIR: Type.Optional(Type.String({ minLength: 1, description: 'directory of the archives when OBJECT_STORAGE_URL is unset; unset: .data/archives', examples: ['.data/archives'] })),
    }),
    events: {
      // The rules' notifications: written once per event across the instances (the handler of that name).
      consumes: [{ name: 'notification.orders', from: 'core', mode: 'group', types: ['order.created', 'order.status-changed'] }],
    },
    lookups: [
      { table: 'orders_lookup', from: 'core', entity: 'order', key: 'id', keyType: 'uuid', columns: { order_code: 'text', status: 'text', department_code: 'text' } },
    ],
    jobs: [
      { name: 'partitions.create-ahead', schedule: '0 1 * * *', description: "create notifications' monthly partitions for this month and the next three" },
      { name: 'partitions.drain-default', schedule: '*/10 * * * *', description: 'move rows out of the default partition into their month, creating it' },
      { name: 'idempotency.prune', schedule: '15 * * * *', description: 'delete Idempotency-Keys past their 24 h' },
      { name: 'applied-events.prune', schedule: '45 * * * *', description: "forget core's events applied more than 8 days ago (core's feed keeps 7)" },
      {
        name: 'archive.run', schedule: '0 2 * * *', scheduleVariable: 'NOTIFICATION_ARCHIVE_AT',
        description: 'move notifications older than NOTIFICATION_RETENTION_DAYS (30) to gzip JSONL archives per department and day, verified before delete, in short batches; drop fully archived months; delete archives older than NOTIFICATION_ARCHIVE_KEEP_DAYS (365)',
      },
      {
        name: 'lookups.reconcile', schedule: '0 2 * * *', scheduleVariable: 'LOOKUP_RECONCILE_AT',
        description: "repair orders_lookup from core's export",
      },
    ],
    reporting: { publishes: ['notifications'] },
  },
  masterdata: {
    hostname: 'masterdata',
    port: 4102,
    database: 'masterdata',
    layer: 'shared',
    label: 'Master data',
    routes: [
      { prefix: '/api/v1/labels' },
      { prefix: '/api/v1/regions' },
      { prefix: '/api/v1/districts' },
      { prefix: '/api/v1/sub-districts' },
      { prefix: '/api/v1/departments' },
      { prefix: '/api/v1/classification-codes' },
    ],
    dependsOn: ['iam'],
    permissions: [
      'labels:read', 'labels:write', 'regions:read', 'regions:write', 'districts:read', 'districts:write',
      'sub-districts:read', 'sub-districts:write', 'departments:read', 'departments:write',
      'classification-codes:read', 'classification-codes:write',
    ],
    events: {
      publishes: masterdataEvents,
      aggregateIds: { label: 'code', region: 'code', district: 'code', 'sub-district': 'code', department: 'code', 'classification-code': 'code' },
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
    replicas: 2,
    routes: [
      { prefix: '/api/v1/resources' },
      { prefix: '/api/v1/orders' },
      { prefix: '/api/v1/engagements' },
      { prefix: '/api/v1/intakes' },
      { prefix: '/api/v1/records' },
      { prefix: '/api/v1/reports' },
    ],
    dependsOn: ['iam', 'masterdata'],
    permissions: [
      'resources:read', 'resources:write', 'orders:read', 'orders:write', 'engagements:read', 'engagements:write',
      'intakes:read', 'intakes:write', 'records:read', 'records:write', 'reports:read',
    ],
    // Rows with a department_code: their routes apply department conditions (tests/system/department-policies.test.ts).
    departmentScoped: ['orders', 'engagements', 'intakes'],
    events: {
      publishes: coreEvents,
      aggregateIds: { order: 'id', resource: 'id' },
    },
    // Followed by one group per producer (core.lookups.masterdata), once per event across core's
    // instances; each lookup also checks references to its codes (`ref: 'label'`, active rows only).
    lookups: [
      { table: 'labels_lookup', from: 'masterdata', entity: 'label', key: 'code', columns: { label: 'text', display_name: 'text', abbreviation: 'text', display_order: 'integer', is_active: 'boolean' } },
      { table: 'regions_lookup', from: 'masterdata', entity: 'region', key: 'code', columns: { name: 'text', zone: 'text', is_active: 'boolean' } },
      { table: 'districts_lookup', from: 'masterdata', entity: 'district', key: 'code', columns: { name: 'text', region_code: 'text', is_active: 'boolean' } },
      { table: 'departments_lookup', from: 'masterdata', entity: 'department', key: 'code', columns: { name: 'text', is_active: 'boolean' } },
      { table: 'classification_codes_lookup', from: 'masterdata', entity: 'classification-code', key: 'code', columns: { description: 'text', category: 'text', is_active: 'boolean' } },
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
    routes: [{ prefix: '/api/v1/reporting' }],
    permissions: ['reporting:read'],
    dependsOn: ['iam'],
    config: Type.Object({
      REPORTING_MAX_RETAINED_WAL_MB: Type.Integer({ minimum: 0, default: 1024, description: 'the status warns when a slot retains more WAL than this (MB)' }),
    }),
  },
  // ── Shared layer: the stateless edge ────────────────────────────────────────
  gateway: {
    hostname: 'gateway',
    port: 4110,
    database: '',
    layer: 'shared',
    label: 'API gateway',
    routes: [],
    // Routes every service's `routes` (each becomes a peer); starts after these.
    edge: true,
    dependsOn: ['iam', 'masterdata', 'core', 'notification', 'reporting'],
    // The rate-limit store shared by gateway instances (in-memory, per instance, without REDIS_URL).
    uses: ['redis'],
    // Every request allocates here: 50 scavenges per 1,000 requests at 1 MB, 3.5 at 16 MB, for
    // ~20 MB more RSS at rest (bench/README.md, "Memory at rest").
    semiSpaceMb: 16,
    config: Type.Object({
      CORS_ORIGINS: Type.String({ default: '', description: 'origins allowed to call the API from a browser, comma-separated; none by default', examples: ['https://app.example.com'] }),
      RATE_LIMIT_PER_IP: Type.Integer({ minimum: 1, default: 1200, description: 'requests per window from one address' }),
      RATE_LIMIT_PER_USER: Type.Integer({ minimum: 1, default: 1200, description: 'requests per window from one signed-in user' }),
      RATE_LIMIT_WINDOW_MS: Type.Integer({ minimum: 100, default: 60_000, description: 'the rate-limit window' }),
      GATEWAY_BODY_LIMIT: Type.Integer({ minimum: 1024, default: 1024 * 1024, description: 'largest request body, in bytes' }),
      UPSTREAM_TIMEOUT_MS: Type.Integer({ minimum: 100, default: 10_000, description: 'how long an upstream may take to answer' }),
    }),
  },
} as const satisfies Record<string, ServiceDefinition>;

export type ServiceKey = keyof typeof serviceDefinitions;
