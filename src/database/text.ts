/** What a string compared with a text column must be on both databases. */

/**
 * Whether `value` can be compared with a text column. PostgreSQL's text cannot hold U+0000 and
 * refuses the whole statement that holds one (where SQLite would match no row); no stored name
 * holds one, as the registration rules of users and clients allow none.
 */
export function comparableAsText(value: string): boolean {
  return !value.includes('\u0000');
}
