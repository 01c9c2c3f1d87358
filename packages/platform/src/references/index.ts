export { createReferenceValidator, type ReferenceCheck, type ReferenceSource, type ReferenceValidator } from './validator.ts';
export { cachedReferences, iamUserResolver, lookupReferences, ownerCodeResolver, type CachedReferenceSource, type CachedReferencesOptions } from './sources.ts';
