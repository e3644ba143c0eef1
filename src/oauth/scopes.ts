/** Scope strings (RFC 6749 §3.3): space-separated tokens of printable ASCII without `"` or `\`. */

const SCOPE_TOKEN = /^[\x21\x23-\x5B\x5D-\x7E]+$/;

/** A scope string or list is malformed: the caller's fault. */
export class InvalidScopeError extends Error {
  override readonly name = 'InvalidScopeError';
  readonly code = 'ERR_JWKS_INVALID_SCOPE';
}

/** The distinct scope tokens of `scope`, in their first order; throws {@link InvalidScopeError} for a malformed one. */
export function parseScope(scope: string): string[] {
  const tokens = scope.split(' ').filter((token) => token !== '');
  const malformed = tokens.find((token) => !SCOPE_TOKEN.test(token));
  if (malformed !== undefined) throw new InvalidScopeError(`${JSON.stringify(malformed)} is not a scope token (RFC 6749 §3.3)`);
  return [...new Set(tokens)];
}

export function formatScope(scopes: readonly string[]): string {
  return scopes.join(' ');
}

/** The scopes of `requested` that `allowed` does not hold. */
export function scopesBeyond(requested: readonly string[], allowed: readonly string[]): string[] {
  return requested.filter((scope) => !allowed.includes(scope));
}
