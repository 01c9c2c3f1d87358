export type { BackingService, EventSubscription, JobDefinition, Layer, LookupColumnType, LookupDefinition, Registry, ReportingTable, RouteDefinition, Service, ServiceDefinition, ServiceSubscription, SubscriptionMode } from './types.ts';
export { serviceDefinitions, type ServiceKey } from './services.ts';
export { envPrefix, isCronExpression, loadRegistry, RegistryError, snakeCase, validateRegistry, type RegistryIssue } from './load.ts';
export { coreEvents, iamEvents, masterdataEvents } from './events.ts';
export { IDENTITY_CHANGES, LOOKUP_COLUMN_TYPES, lookupSourceKey, typeMatches } from './load.ts';
