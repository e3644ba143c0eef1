/** The soak's command line: `--quick`, `--duration`, `--warmup` and `--rate`, read into its settings. */
import { parseArgs } from 'node:util';

export const USAGE = 'usage: node dist/bench/soak.js [--quick] [--duration <seconds>] [--warmup <seconds>] [--rate <requests per second>]';

export interface Settings {
  durationSeconds: number;
  warmUpSeconds: number;
  perSecond: number;
  quick: boolean;
}

function positiveNumber(flag: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const parsed = Number(value);
  if (!Number.isFinite(parsed) || parsed <= 0) throw new Error(`--${flag} must be a positive number of ${flag === 'rate' ? 'requests per second' : 'seconds'} (got "${value}")`);
  return parsed;
}

export function readSettings(): Settings {
  const { values } = parseArgs({ options: { quick: { type: 'boolean', default: false }, duration: { type: 'string' }, warmup: { type: 'string' }, rate: { type: 'string' } } });
  const settings = {
    durationSeconds: positiveNumber('duration', values.duration, values.quick ? 15 : 60),
    warmUpSeconds: positiveNumber('warmup', values.warmup, values.quick ? 5 : 10),
    perSecond: positiveNumber('rate', values.rate, 1000),
    quick: values.quick,
  };
  if (settings.warmUpSeconds >= settings.durationSeconds) throw new Error(`--warmup (${String(settings.warmUpSeconds)}) must be shorter than --duration (${String(settings.durationSeconds)}), which includes it`);
  return settings;
}
