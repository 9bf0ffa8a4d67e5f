/**
 * Pure edits of a storyboard and its parallel list of stable shot ids. Every edit returns a new
 * `Board` (nothing is mutated), so the storyboard slice can keep old ones for undo.
 *
 * Shot ids are the studio's own (the storyboard JSON has none): they keep React keys, drag and
 * drop and generated takes attached to a shot while shots move around.
 */
import type { Shot, Storyboard } from '../model/storyboard.ts';
import { MAX_SHOT_FRAMES, MAX_SHOTS } from '../model/storyboard.ts';

export { MAX_SHOT_FRAMES, MAX_SHOTS };

/** Frames per second of the storyboard's frame counts (the shipped world runs at 8 fps). */
export const FPS = 8;

export interface Board {
  board: Storyboard;
  /** One id per shot, same order as `board.shots`. */
  shotIds: string[];
}

let counter = 0;

/** A new shot id, unique within this page (and, with the time part, across reloads). */
export function newShotId(): string {
  counter = (counter + 1) % 1_000_000;
  return `shot-${Date.now().toString(36)}-${counter.toString(36)}-${Math.floor(Math.random() * 1e6).toString(36)}`;
}

/** A seed for a new shot: 32-bit, never negative. */
export function randomSeed(): number {
  return Math.floor(Math.random() * 0x7fffffff);
}

/** Gives each shot of `board` a fresh id. */
export function withIds(board: Storyboard): Board {
  return { board, shotIds: board.shots.map(() => newShotId()) };
}

/** The board a new studio opens with: two shots of the shipped world. */
export function defaultBoard(): Board {
  return withIds({
    version: 1,
    globalCaption: 'Character 1 is a red star. Character 2 is a blue circle.',
    shots: [
      { caption: 'Character 1 bounces in the meadow, wide.', frames: 8, seed: 1 },
      { caption: 'Character 2 moves left on the beach, close-up.', frames: 8, seed: 2 },
    ],
  });
}

function replaceShots(b: Board, shots: Shot[], shotIds: string[]): Board {
  return { board: { ...b.board, shots }, shotIds };
}

export function setGlobalCaption(b: Board, caption: string): Board {
  return { board: { ...b.board, globalCaption: caption }, shotIds: b.shotIds };
}

/** Merges `patch` into shot `index`; frames are clamped to 1…MAX_SHOT_FRAMES, seeds to uint32. */
export function updateShot(b: Board, index: number, patch: Partial<Shot>): Board {
  const old = b.board.shots[index];
  if (!old) return b;
  const next: Shot = { ...old, ...patch };
  next.frames = clampInt(next.frames, 1, MAX_SHOT_FRAMES, old.frames);
  next.seed = clampInt(next.seed, 0, 0xffffffff, old.seed);
  const shots = b.board.shots.slice();
  shots[index] = next;
  return replaceShots(b, shots, b.shotIds);
}

/**
 * Inserts a new shot after `after` (default: at the end), with the frame count of its
 * neighbour and a fresh seed. No-op at MAX_SHOTS.
 */
export function addShot(b: Board, after = b.board.shots.length - 1, id = newShotId(), seed = randomSeed()): Board {
  if (b.board.shots.length >= MAX_SHOTS) return b;
  const at = Math.min(Math.max(after + 1, 0), b.board.shots.length);
  const frames = b.board.shots[Math.max(0, at - 1)]?.frames ?? 8;
  const shots = b.board.shots.slice();
  const ids = b.shotIds.slice();
  shots.splice(at, 0, { caption: '', frames, seed });
  ids.splice(at, 0, id);
  return replaceShots(b, shots, ids);
}

/** Copies shot `index` (caption, frames and seed) right after it. No-op at MAX_SHOTS. */
export function duplicateShot(b: Board, index: number, id = newShotId()): Board {
  const src = b.board.shots[index];
  if (!src || b.board.shots.length >= MAX_SHOTS) return b;
  const shots = b.board.shots.slice();
  const ids = b.shotIds.slice();
  shots.splice(index + 1, 0, { ...src });
  ids.splice(index + 1, 0, id);
  return replaceShots(b, shots, ids);
}

/** Removes shot `index`. The last shot cannot be removed (a storyboard needs one). */
export function deleteShot(b: Board, index: number): Board {
  if (b.board.shots.length <= 1 || !b.board.shots[index]) return b;
  const shots = b.board.shots.filter((_, i) => i !== index);
  const ids = b.shotIds.filter((_, i) => i !== index);
  return replaceShots(b, shots, ids);
}

/** Moves shot `from` to position `to` (both clamped into range). */
export function moveShot(b: Board, from: number, to: number): Board {
  const n = b.board.shots.length;
  if (from < 0 || from >= n) return b;
  const dest = Math.min(Math.max(to, 0), n - 1);
  if (dest === from) return b;
  const shots = b.board.shots.slice();
  const ids = b.shotIds.slice();
  const [shot] = shots.splice(from, 1);
  const [id] = ids.splice(from, 1);
  shots.splice(dest, 0, shot);
  ids.splice(dest, 0, id);
  return replaceShots(b, shots, ids);
}

/** True when two boards hold the same storyboard and ids (no history entry for a no-op edit). */
export function sameBoard(a: Board, b: Board): boolean {
  if (a === b) return true;
  if (a.board.globalCaption !== b.board.globalCaption || a.shotIds.length !== b.shotIds.length) return false;
  return a.board.shots.every((s, i) => {
    const t = b.board.shots[i];
    return a.shotIds[i] === b.shotIds[i] && s.caption === t.caption && s.frames === t.frames && s.seed === t.seed;
  });
}

/** Start frame of every shot on the joint timeline, plus the total as the last entry. */
export function shotOffsets(board: Storyboard): number[] {
  const out = [0];
  for (const s of board.shots) out.push(out[out.length - 1] + s.frames);
  return out;
}

function clampInt(v: number, lo: number, hi: number, fallback: number): number {
  if (!Number.isFinite(v)) return fallback;
  return Math.min(Math.max(Math.round(v), lo), hi);
}
