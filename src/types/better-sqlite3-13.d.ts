// better-sqlite3 13, installed under an alias where Node can run it; its API is that of 12.
declare module 'better-sqlite3-13' {
  import Database from 'better-sqlite3';
  export default Database;
}
