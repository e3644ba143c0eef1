/** The package's public surface: the service plugin, the app builder and their types. */
export { buildApp, jwksService, type AppOptions, type JwksServiceOptions } from './app.js';
export { ConfigError, loadConfig, type ServerConfig } from './config.js';
export { systemClock, type Clock } from './clock.js';
export type { Database, KeysTable } from './database/schema.js';
export type { EnsuredKeys, KeyStore, StoredKey } from './key-store.js';
export type { Jwks, Keyring, KeyringKey, KeyringSnapshot, PublicJwk } from './keyring.js';
export type { IssueTokenOptions, Signer } from './signer.js';
