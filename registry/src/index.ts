export type { EventSubscription, Layer, LookupDefinition, Registry, Service, ServiceDefinition } from './types.ts';
export { serviceDefinitions, type ServiceKey } from './services.ts';
export { envPrefix, loadRegistry, RegistryError, snakeCase, validateRegistry, type RegistryIssue } from './load.ts';
