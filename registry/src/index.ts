export type { EventSubscription, JobDefinition, ReportingTable, Layer, LookupDefinition, Registry, Service, ServiceDefinition, SubscriptionMode } from './types.ts';
export { serviceDefinitions, type ServiceKey } from './services.ts';
export { envPrefix, isCronExpression, loadRegistry, RegistryError, snakeCase, validateRegistry, type RegistryIssue } from './load.ts';
