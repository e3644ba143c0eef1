// `npm start`: runs the built server (dist/server/, made by `npm install`, `npm ci` and `npm run build`),
// or says in one line what to run when there is none, rather than failing with a stack trace.
import { existsSync } from 'node:fs';

const entry = new URL('../dist/server/server.js', import.meta.url);
if (!existsSync(entry)) {
  console.error('jwks-server is not built: run `npm run build` (npm install and npm ci build it too), then `npm start` again.');
  process.exit(1);
}
await import(entry.href);
