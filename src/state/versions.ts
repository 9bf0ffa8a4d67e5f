/**
 * Versions of a shot: what changed on the board since a version was generated, and the seed
 * Regenerate samples with (never a silent change: the caller shows it, and the old version keeps
 * its own seed, which Keep brings back).
 */
import type { Shot } from '../model/storyboard.ts';
import { randomSeed } from './board-ops.ts';
import type { TakeMeta } from './types.ts';

export type ShotChange = 'caption' | 'length' | 'seed';

/** What the shot changed since `take` was generated from it (empty: nothing). */
export function changesSince(shot: Shot, take: Pick<TakeMeta, 'caption' | 'frames' | 'seed'>): ShotChange[] {
  const out: ShotChange[] = [];
  if (take.caption !== shot.caption) out.push('caption');
  if (take.frames !== shot.frames) out.push('length');
  if (take.seed !== shot.seed) out.push('seed');
  return out;
}

/**
 * The seed a regenerate of `shot` uses: its own when the shot has no kept version or changed
 * since it (the person set what they want), else a new one (the same seed and caption would
 * give the same frames again).
 */
export function regenerateSeed(
  shot: Shot,
  kept: TakeMeta | undefined,
  fresh: () => number = randomSeed,
): { seed: number; changed: boolean } {
  if (!kept || changesSince(shot, kept).length > 0) return { seed: shot.seed, changed: false };
  let seed = fresh();
  while (seed === shot.seed) seed = fresh();
  return { seed, changed: true };
}
