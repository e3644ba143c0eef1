/** Reads the moments the database wrote with CURRENT_TIMESTAMP. */
import type { DatabaseTimestamp } from './schema.js';

/** A CURRENT_TIMESTAMP as ISO 8601 to the second: SQLite's `YYYY-MM-DD HH:MM:SS` (UTC), or PostgreSQL's Date. */
export function isoSecond(timestamp: DatabaseTimestamp): string {
  if (timestamp instanceof Date) return timestamp.toISOString().replace(/\.\d+Z$/, 'Z');
  return `${timestamp.replace(' ', 'T')}Z`;
}
