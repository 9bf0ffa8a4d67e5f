/**
 * Which earlier shots show the characters of a shot, read from the storyboard's shot captions,
 * and how much of a chunk's routing lands there: the question "does shot 3, where character 1
 * is back, retrieve shot 1, where character 1 was first seen?".
 *
 * Captions follow the world's grammar (train/world.py `shot_caption`): "Character 1 bounces and
 * character 2 stays in the meadow, wide." or "Nobody is on the beach, close-up.". A character is
 * any "character N" in a shot caption, whatever the case; the rest of the caption is ignored, so
 * hand-written captions that mention characters the same way work too.
 *
 * Shots are numbered from 0 in stream order (the order of the run: the trace's chunk shots).
 */
import type { ChunkTable } from '../model/layout.ts';
import type { ScoreProfile } from './dag-layout.ts';

const CHARACTER = /\bcharacter\s+(\d+)\b/gi;

/** The characters a shot caption mentions, ascending, each once ([] for "Nobody is …"). */
export function shotCharacters(caption: string): number[] {
  const ids = new Set<number>();
  for (const m of caption.matchAll(CHARACTER)) ids.add(Number(m[1]));
  return [...ids].sort((a, b) => a - b);
}

/** One character of a shot and the earlier shots that show it too (ascending; [] if none). */
export interface CharacterMemory {
  character: number;
  shots: number[];
}

/**
 * For shot `s` of `captions`: each of its characters with the earlier shots (index < s) whose
 * captions mention the same character. Characters seen for the first time in s come with [].
 */
export function memoryShots(captions: readonly string[], s: number): CharacterMemory[] {
  const earlier = captions.slice(0, Math.max(0, s)).map(shotCharacters);
  return shotCharacters(captions[s] ?? '').map((character) => ({
    character,
    shots: earlier.flatMap((chars, shot) => (chars.includes(character) ? [shot] : [])),
  }));
}

/** Every shot in `memory`, ascending, each once. */
export function memoryShotSet(memory: readonly CharacterMemory[]): number[] {
  return [...new Set(memory.flatMap((m) => m.shots))].sort((a, b) => a - b);
}

export interface MemoryShare {
  /** Share of the chunk's routed picks that land in video chunks of the shots; null without picks. */
  routed: number | null;
  /** Those shots' frames over the frames of every candidate chunk (what uniform routing would give); null without candidates. */
  uniform: number | null;
}

/**
 * How much of a query chunk's routing goes to `shots`, against uniform routing, from its score
 * profile (dag-layout `scoreProfile`, which holds the route counts over the selected layers and
 * heads and, by its roles, which chunks were candidates: under causality, the earlier shots'
 * frames). The routed share counts picks, so with top-k each query token counts k times.
 */
export function memoryShare(table: ChunkTable, profile: ScoreProfile, shots: readonly number[]): MemoryShare {
  const wanted = new Set(shots);
  const inShots = (c: number): boolean => table.kind[c] === 1 && wanted.has(table.shot[c]);
  const tokens = (c: number): number => table.end[c] - table.start[c];
  let all = 0;
  let hit = 0;
  let cand = 0;
  let candHit = 0;
  for (const b of profile.bars) {
    // share = picks / (query tokens × layers × heads): the same divisor for every bar, so sums of shares are ratios of picks
    all += b.share;
    if (inShots(b.chunk)) hit += b.share;
    if (b.role === 'candidate') {
      cand += tokens(b.chunk);
      if (inShots(b.chunk)) candHit += tokens(b.chunk);
    }
  }
  return { routed: all > 0 ? hit / all : null, uniform: cand > 0 ? candHit / cand : null };
}
