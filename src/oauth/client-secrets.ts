/**
 * Client secrets: 256 random bits, shown once, stored as a SHA-256 digest. A secret of full
 * entropy cannot be guessed from its digest, so the digest needs no slow hash (argon2 or bcrypt
 * per token request would make the token endpoint as slow as a login).
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

const SECRET_BYTES = 32;

/** A new secret: 32 random bytes, base64url (43 characters). */
export function generateClientSecret(): string {
  return randomBytes(SECRET_BYTES).toString('base64url');
}

export function secretDigest(secret: string): Buffer {
  return createHash('sha256').update(secret, 'utf8').digest();
}

/** Whether `secret` is the one `digest` was made from, in time that does not depend on where they differ. */
export function secretMatches(digest: Buffer, secret: string): boolean {
  const candidate = secretDigest(secret);
  return candidate.length === digest.length && timingSafeEqual(candidate, digest);
}
