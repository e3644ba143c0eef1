/** The package's public surface: the service plugin, the app builder, their types and typed errors. */
// Re-exporting the plugins' option types also brings their `declare module 'fastify'` blocks into
// this file's declarations, so that a consumer's `app.signer` and the like are typed.
export type { DatabasePluginOptions } from '../plugins/database.js';
export type { KeyStorePluginOptions } from '../plugins/key-store.js';
export type { KeyringPluginOptions } from '../plugins/keyring.js';
export type { MetricsPluginOptions } from '../plugins/metrics.js';
export type { OAuthPluginOptions } from '../plugins/oauth.js';
export type { SignerPluginOptions } from '../plugins/signer.js';
export type { UsersPluginOptions } from '../plugins/users.js';
export { buildApp, DEFAULT_ISSUER, jwksService, type AppOptions, type JwksServiceOptions, type MetricsSettings, type OAuthSettings } from './app.js';
export { SECURITY_HEADERS, SERVER_LIMITS } from './server/http-defaults.js';
export { AUTH_MODES, type AuthMode } from './users/auth-modes.js';
export { DEMO_SUBJECT, type Authentication, type Authenticator } from './users/authenticator.js';
export { ConfigError, loadConfig, type RateLimitSettings, type ServerConfig } from './server/config.js';
export { systemClock, type Clock } from './common/clock.js';
export type { AuthLogsTable, Database, KeysTable, OAuthClientsTable, OAuthRevocationsTable, UsersTable } from './database/schema.js';
export { KeyEncryptionError } from './keys/key-cipher.js';
export { DEFAULT_ALGORITHMS, SIGNING_ALGORITHMS, type AlgorithmList, type SigningAlgorithm } from './keys/algorithms.js';
export type { CachedDocument } from './keys/cached-document.js';
export { KEY_STATES, keyState, type KeyMetadata, type KeySchedule, type KeyState, type RotationPolicy } from './keys/key-lifecycle.js';
export { KeyStoreError, type KeyRole, type KeyStateCount, type KeyStore, type MaintenanceReport, type RevokeOutcome, type StoredKey } from './keys/key-store.js';
export type { Jwks, Keyring, KeyringKey, KeyringSnapshot, PublishedKey } from './keys/keyring.js';
export { UnusableKeyError, type EcPublicJwk, type OkpPublicJwk, type PublicJwk, type RsaPublicJwk } from './keys/public-jwk.js';
export type { AccessToken, IssueAccessTokenOptions, IssueTokenOptions, Signer } from './tokens/signer.js';
export { GRANT_TYPES, InvalidClientSettingsError, type ClientSettings, type ExtraClaims, type GrantType, type OAuthClient } from './oauth/clients.js';
export type { ClientRegistry, RegisteredClient } from './oauth/client-registry.js';
export { DuplicateClientError, type ClientRecord, type ClientRemoval, type ClientStore, type StoredClient } from './oauth/client-store.js';
export { OAuthError, type OAuthErrorCode } from './oauth/oauth-error.js';
export type { AccessTokenWithdrawal, IntrospectionResponse, OAuthServer, TokenParameters, TokenResponse } from './oauth/oauth-server.js';
export type { RevocationStore } from './oauth/revocation-store.js';
export { InvalidTokenError, type TokenVerifier } from './tokens/token-verifier.js';
export { DuplicateUserError, type User, type UserStore } from './users/user-store.js';
export { REDACTED_LOG_PATHS, serviceLoggerOptions } from './server/logging.js';
export type { AuthFailureReason, ServiceMetrics } from './server/metrics.js';
