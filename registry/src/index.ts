export type { BackingService, EventSubscription, JobDefinition, Layer, LookupDefinition, Registry, ReportingTable, RouteDefinition, Service, ServiceDefinition, SubscriptionMode } from './types.ts';
export { serviceDefinitions, type ServiceKey } from './services.ts';
export { envPrefix, isCronExpression, loadRegistry, RegistryError, snakeCase, validateRegistry, type RegistryIssue } from './load.ts';
