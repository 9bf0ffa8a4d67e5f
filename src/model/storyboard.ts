/**
 * The storyboard: what a person writes and what the CLI reads (`moc generate STORYBOARD.json`).
 * Same JSON as train/world.py writes:
 *   {"version": 1, "globalCaption": str, "shots": [{"caption": str, "frames": int, "seed": int}]}
 * `parseStoryboard` refuses bad input with one line naming the first problem.
 */
import { z } from './zod.ts';
import { MAX_STORYBOARD_BYTES, formatBytes } from './limits.ts';
import { InputError } from './errors.ts';

export { MAX_STORYBOARD_BYTES };

export const STORYBOARD_VERSION = 1;
/** Frames per shot the studio allows (8 fps: 1 frame to 8 s). */
export const MAX_SHOT_FRAMES = 64;
export const MAX_SHOTS = 32;

export interface Shot {
  caption: string;
  frames: number;
  seed: number;
}

export interface Storyboard {
  version: typeof STORYBOARD_VERSION;
  globalCaption: string;
  shots: Shot[];
}

const shotSchema = z.object({
  caption: z.string(),
  frames: z.number().int().min(1).max(MAX_SHOT_FRAMES),
  seed: z.number().int().min(0).max(0xffffffff),
});

const storyboardSchema = z.object({
  version: z.literal(STORYBOARD_VERSION),
  globalCaption: z.string(),
  shots: z.array(shotSchema).min(1).max(MAX_SHOTS),
});

/** A storyboard that cannot be used: one line (control characters from the input are escaped). */
export class StoryboardError extends InputError {
  override name = 'StoryboardError';
}

/** Validates parsed JSON; throws StoryboardError with one line such as `storyboard.shots[2].frames: …`. */
export function parseStoryboard(value: unknown): Storyboard {
  const r = storyboardSchema.safeParse(value);
  if (r.success) return r.data as Storyboard;
  const issue = r.error.issues[0];
  const path = ['storyboard', ...issue.path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`))]
    .join('')
    .replace(/\.\[/g, '[');
  let msg = issue.message;
  if (issue.code === 'too_small' && issue.path.length === 1 && issue.path[0] === 'shots')
    msg = 'a storyboard needs at least one shot';
  throw new StoryboardError(`${path.replace('storyboard.[', 'storyboard[')}: ${msg}`);
}

/** Parses storyboard JSON text (at most MAX_STORYBOARD_BYTES); throws StoryboardError naming what is wrong. */
export function parseStoryboardJson(text: string): Storyboard {
  if (text.length > MAX_STORYBOARD_BYTES) {
    throw new StoryboardError(
      `storyboard is ${formatBytes(text.length)} or more, more than the limit of ${formatBytes(MAX_STORYBOARD_BYTES)} (is it the right file?)`,
    );
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new StoryboardError(`storyboard is not valid JSON: ${(e as Error).message}`);
  }
  return parseStoryboard(value);
}

export function totalFrames(board: Storyboard): number {
  return board.shots.reduce((n, s) => n + s.frames, 0);
}
