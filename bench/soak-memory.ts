/** The server's memory during the soak: its RSS read ten times a second, and the floor its growth is measured on. */
import { residentSetMb } from './server-process.js';

export const RSS_GROWTH_LIMIT_PERCENT = 10;
/**
 * Each password hash or check in flight holds argon2's 19 MiB (m = 19456 KiB) until it ends, so one
 * reading of the RSS says mostly how many were running at that instant (0 to 4, on libuv's four
 * threads). Growth is measured on the lowest reading of the last 5 s of each phase (of its second
 * half, if shorter): with ten readings a second, some fall where no hash is running.
 */
export const RSS_FLOOR_SECONDS = 5;

/** A second of RSS readings: the last one, at `seconds` into the run, and the lowest and highest of the second. */
export interface RssSample {
  seconds: number;
  rssMb: number;
  lowestMb: number;
  highestMb: number;
}

const RSS_READINGS_PER_SECOND = 10;
const tenths = (value: number) => Number(value.toFixed(1));

/** Reads the server's RSS ten times a second; `mark()` closes the current second early, at a phase's end. */
export function watchRss(pid: number | undefined, elapsedSeconds: () => number): { mark(): RssSample; stop(): RssSample[] } {
  const samples: RssSample[] = [];
  let [lowest, highest, readings] = [Infinity, 0, 0];
  const read = () => {
    const rssMb = residentSetMb(pid);
    [lowest, highest, readings] = [Math.min(lowest, rssMb), Math.max(highest, rssMb), readings + 1];
    return rssMb;
  };
  const mark = () => {
    const sample = { seconds: tenths(elapsedSeconds()), rssMb: tenths(read()), lowestMb: tenths(lowest), highestMb: tenths(highest) };
    samples.push(sample);
    [lowest, highest, readings] = [Infinity, 0, 0];
    return sample;
  };
  const timer = setInterval(() => {
    try {
      if (readings + 1 >= RSS_READINGS_PER_SECOND) mark();
      else read();
    } catch {
      // The server has gone: the load stops on its exit.
    }
  }, 1000 / RSS_READINGS_PER_SECOND);
  return {
    mark,
    stop: () => {
      clearInterval(timer);
      return samples;
    },
  };
}

/** The lowest reading of the RSS_FLOOR_SECONDS (at most half the phase) up to `until`, the end of a phase `phaseSeconds` long. */
export function rssFloorMb(samples: readonly RssSample[], until: RssSample, phaseSeconds: number): number {
  const from = until.seconds - Math.min(RSS_FLOOR_SECONDS, phaseSeconds / 2);
  const window = samples.filter((sample) => sample.seconds > from && sample.seconds <= until.seconds);
  return Math.min(...window.map((sample) => sample.lowestMb));
}

export const percentGrowth = (from: number, to: number) => Number((((to - from) / from) * 100).toFixed(1));
