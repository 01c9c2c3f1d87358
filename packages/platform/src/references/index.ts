export { createReferenceValidator, type ReferenceCheck, type ReferenceSource, type ReferenceValidator } from './validator.ts';
export { cachedReferences, iamUserResolver, lookupReferences, type CachedReferenceSource, type CachedReferencesOptions } from './sources.ts';
