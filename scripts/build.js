// `npm run build`, and `prepare` (npm install, npm ci): compiles with tsc into dist/, then bundles
// the standalone server (dist/src/server/server.js) into dist/server/ with esbuild. Node.js then reads a
// few files instead of some six hundred modules, which takes a third off the time from launch to
// first answer. The entry chunk holds only what binds the port; the service, pg and ioredis are
// chunks of their own, loaded once the port is bound, and only when the configuration uses them.
// `--if-installed` (prepare) builds nothing, saying so, where the development dependencies were
// left out: `npm ci --omit=dev` in a deployment that brings a dist/ built elsewhere.
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
let tsc;
try {
  tsc = require.resolve('typescript/bin/tsc');
} catch (error) {
  if (!process.argv.includes('--if-installed')) throw error;
  console.error('jwks-server: the development dependencies are not installed, so dist/ is not built here.');
  process.exit(0);
}
execFileSync(process.execPath, [tsc, '-p', 'tsconfig.build.json'], { stdio: 'inherit' });

const { build } = await import('esbuild');

const outdir = 'dist/server';
rmSync(outdir, { recursive: true, force: true });
await build({
  entryPoints: ['dist/src/server/server.js'],
  outdir,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20.19',
  sourcemap: true,
  logLevel: 'warning',
  // Native addons, and pg's optional native binding, stay in node_modules.
  external: ['better-sqlite3', 'better-sqlite3-13', '@node-rs/argon2', 'pg-native'],
  // The CommonJS packages in the bundle call require(), which an ES module does not have.
  banner: { js: "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);" },
});
