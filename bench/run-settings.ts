/** The benchmark's settings: how long and how hard each run is (`--quick` shortens them), and the large database's size. */
import { availableParallelism } from 'node:os';

export const QUICK = process.argv.includes('--quick');
export const RUN_SECONDS = QUICK ? 2 : 10;
export const WARM_UP_SECONDS = QUICK ? 1 : 3;
// The key endpoints and their baseline take turns, so that drift in a shared machine's speed
// falls on both: three rounds each, the median of the per-round ratios reported.
export const SIDE_BY_SIDE_ROUNDS = QUICK ? 1 : 3;
export const SIDE_BY_SIDE_SECONDS = QUICK ? 2 : 5;
export const CONNECTIONS = 50;
export const CORES = availableParallelism();
export const EXPIRED_KEYS = 100_000;
export const USERS = 1_000;
export const TEN_YEARS = String(10 * 365 * 24 * 3600);
