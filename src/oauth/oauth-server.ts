/**
 * The token endpoint (RFC 6749 §4.3, §4.4), token introspection (RFC 7662) and revocation
 * (RFC 7009), for a client already authenticated; the routes only carry HTTP to and from here.
 */
import type { JWTPayload } from 'jose';
import type { Clock } from '../common/clock.js';
import type { Signer } from '../tokens/signer.js';
import { InvalidTokenError, type TokenVerifier } from '../tokens/token-verifier.js';
import type { Authenticator } from '../users/authenticator.js';
import type { UserStore } from '../users/user-store.js';
import { GRANT_TYPES, type GrantType, type OAuthClient } from './clients.js';
import type { ClientRegistry } from './client-registry.js';
import { OAuthError } from './oauth-error.js';
import type { RevocationStore } from './revocation-store.js';
import { formatScope, InvalidScopeError, parseScope, scopesBeyond } from './scopes.js';

export interface TokenParameters {
  grant_type?: string | undefined;
  scope?: string | undefined;
  username?: string | undefined;
  password?: string | undefined;
}

/** RFC 6749 §5.1. */
export interface TokenResponse {
  access_token: string;
  token_type: 'Bearer';
  expires_in: number;
  scope?: string;
}

/** RFC 7662 §2.2: the claims of an active token, or only `active: false`. */
export type IntrospectionResponse = { active: false } | (JWTPayload & { active: true; token_type: 'Bearer' });

/** Why an access token that verifies is no longer good. */
export type AccessTokenWithdrawal = 'revoked' | 'client-removed';

export interface OAuthServer {
  /** The grant types this server takes (the password grant only when turned on). */
  readonly grantTypes: readonly GrantType[];
  issueToken(client: OAuthClient, parameters: TokenParameters, requestIp: string): Promise<TokenResponse>;
  introspect(token: string): Promise<IntrospectionResponse>;
  /**
   * Why the verified claims of a token are no longer good: its jti was revoked, or the client it
   * names was removed; undefined while neither (always, for tokens of POST /auth, which name neither).
   */
  withdrawal(claims: JWTPayload): Promise<AccessTokenWithdrawal | undefined>;
  /** Revokes an access token of `client`; nothing happens for a token that is invalid or expired already. */
  revoke(client: OAuthClient, token: string): Promise<void>;
}

export interface OAuthServerOptions {
  signer: Signer;
  tokenVerifier: TokenVerifier;
  authenticator: Authenticator;
  userStore: UserStore;
  clients: ClientRegistry;
  revocations: RevocationStore;
  /** Take `grant_type=password` from clients allowed it (RFC 6749 §4.3, which RFC 9700 advises against). */
  passwordGrant: boolean;
  clock: Clock;
}

function requestedGrant(grantType: string | undefined, supported: readonly GrantType[], client: OAuthClient): GrantType {
  if (grantType === undefined) throw new OAuthError('invalid_request', 'grant_type is required');
  const grant = supported.find((candidate) => candidate === grantType);
  if (grant === undefined) throw new OAuthError('unsupported_grant_type', `grant_type must be one of ${supported.join(', ')}`);
  if (!client.grantTypes.includes(grant)) throw new OAuthError('unauthorized_client', `This client may not use the ${grant} grant`);
  return grant;
}

/** RFC 6749 §3.3: what was asked for, if the client may have all of it; everything it may have when it asked for nothing. */
function grantedScopes(scope: string | undefined, client: OAuthClient): readonly string[] {
  if (scope === undefined) return client.scopes;
  let requested: string[];
  try {
    requested = parseScope(scope);
  } catch (error) {
    if (error instanceof InvalidScopeError) throw new OAuthError('invalid_scope', error.message);
    throw error;
  }
  const beyond = scopesBeyond(requested, client.scopes);
  if (beyond.length > 0) throw new OAuthError('invalid_scope', `This client may not ask for ${formatScope(beyond)}`);
  return requested;
}

export function createOAuthServer({ signer, tokenVerifier, authenticator, userStore, clients, revocations, passwordGrant, clock }: OAuthServerOptions): OAuthServer {
  const grantTypes = GRANT_TYPES.filter((grant) => grant !== 'password' || passwordGrant);

  async function verifiedClaims(token: string): Promise<JWTPayload | undefined> {
    try {
      return await tokenVerifier.verify(token, { anyAudience: true });
    } catch (error) {
      if (error instanceof InvalidTokenError) return undefined;
      throw error;
    }
  }

  async function passwordOwner({ username, password }: TokenParameters) {
    if (username === undefined || password === undefined) throw new OAuthError('invalid_request', 'The password grant needs username and password');
    const authentication = await authenticator.authenticate({ username, password });
    // Demo mode's tokens for unregistered names are /auth's; this grant is for registered users.
    if (authentication.outcome !== 'user') throw new OAuthError('invalid_grant', 'Invalid username or password');
    return authentication.user;
  }

  async function withdrawal(claims: JWTPayload): Promise<AccessTokenWithdrawal | undefined> {
    if (typeof claims.jti === 'string' && (await revocations.isRevoked(claims.jti))) return 'revoked';
    if (typeof claims.client_id === 'string' && !(await clients.isActive(claims.client_id))) return 'client-removed';
    return undefined;
  }

  return {
    grantTypes,
    withdrawal,

    async issueToken(client, parameters, requestIp) {
      const grantType = requestedGrant(parameters.grant_type, grantTypes, client);
      const scopes = grantedScopes(parameters.scope, client);
      const user = grantType === 'password' ? await passwordOwner(parameters) : undefined;
      const { token, expiresIn } = await signer.issueAccessToken({
        clientId: client.clientId,
        subject: user?.username ?? client.clientId,
        audience: client.audience,
        scopes,
        extraClaims: client.extraClaims,
        passwordVerified: user !== undefined,
      });
      if (user !== undefined) await userStore.recordSuccessfulAuth({ requestIp, userId: user.id });
      const response: TokenResponse = { access_token: token, token_type: 'Bearer', expires_in: expiresIn };
      if (scopes.length > 0) response.scope = formatScope(scopes);
      return response;
    },

    async introspect(token) {
      const claims = await verifiedClaims(token);
      // Only access tokens: a token of POST /auth in demo mode names whatever subject was asked
      // for, and an answer of "active" would lend it the authority of a checked client.
      if (claims === undefined || typeof claims.client_id !== 'string' || typeof claims.jti !== 'string') return { active: false };
      if ((await withdrawal(claims)) !== undefined) return { active: false };
      return { ...claims, active: true, token_type: 'Bearer' };
    },

    async revoke(client, token) {
      const claims = await verifiedClaims(token);
      if (claims === undefined) return;
      // Tokens of /auth carry no jti, so there is nothing to name them by (RFC 7009 §2.2.1).
      if (typeof claims.jti !== 'string' || claims.exp === undefined) throw new OAuthError('unsupported_token_type', 'Only access tokens from the token endpoint can be revoked');
      if (claims.client_id !== client.clientId) throw new OAuthError('unauthorized_client', 'The token was issued to another client');
      await revocations.revoke(claims.jti, claims.exp, clock());
    },
  };
}
