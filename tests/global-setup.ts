import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';

/** Builds dist/ once per run, so that the end-to-end tests start the very server `npm start` runs. */
export default function buildOnce(): void {
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  execFileSync(process.execPath, [tsc, '-p', 'tsconfig.build.json'], { stdio: 'inherit' });
}
