/** Response bodies serialized once and named by a strong ETag, for endpoints that serve the same bytes to everyone. */
import { createHash } from 'node:crypto';

export interface CachedDocument {
  json: string;
  /** A strong entity tag (RFC 9110 §8.8.3): the SHA-256 of `json`, so equal bodies share it across instances. */
  etag: string;
}

export function cachedDocument(body: unknown): CachedDocument {
  const json = JSON.stringify(body);
  return { json, etag: `"${createHash('sha256').update(json).digest('base64url')}"` };
}
