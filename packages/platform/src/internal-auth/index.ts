export {
  createServiceCredentials, generateServiceKeyPair, OPERATOR, privateKeyFromText, publicKeyFromText, SERVICE_TOKEN_HEADER,
  SERVICE_TOKEN_MAX_TTL_SECONDS, ServiceTokenError, type ServiceCredentials, type ServiceCredentialsOptions,
} from './credentials.ts';
export { principalsOf, PRIVATE_KEY_VARIABLE, PUBLIC_KEYS_VARIABLE, publicKeysFromText, serviceCredentialsFromEnv } from './environment.ts';
export { clientAddress, feedReaders, internalRoutesOf, OPERATOR_ONLY, protectInternalRoutes, type InternalRoute } from './guard.ts';
export { internalFetch } from './fetch.ts';
export { keyringFromEnv, localKeyring, privateKeyVariableOf, type Keyring } from './keyring.ts';
