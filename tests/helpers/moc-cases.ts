/**
 * Layouts and seeded inputs shared by the MoC tests: frames of 35 tokens, captions of 5 tokens,
 * 1 to 5 shots, chunkFrames 1 and 2, and a single-shot layout (every video chunk its own shot).
 */
import { Rng } from '../../src/engine/random.ts';
import {
  buildChunkTable,
  KIND_TEXT,
  KIND_VIDEO,
  tableFromChunks,
  type Chunk,
  type ChunkTable,
  type LayoutSpec,
} from '../../src/model/layout.ts';

export interface MocCase {
  name: string;
  table: ChunkTable;
}

const FRAME = 35;
const CAPTION = 5;

function spec(
  frames: number[],
  chunkFrames: number,
  globalCaption = CAPTION,
  captions: number[] = frames.map(() => CAPTION),
): LayoutSpec {
  return {
    globalCaptionTokens: globalCaption,
    shots: frames.map((f, s) => ({ captionTokens: captions[s], frames: f })),
    tokensPerFrame: FRAME,
    chunkFrames,
  };
}

/** Every video chunk its own shot: M(i) is text plus the query's own chunk (paper's single-shot). */
export function singleShotTable(frames: number, tokensPerFrame = FRAME): ChunkTable {
  const chunks: Chunk[] = [{ start: 0, end: CAPTION, kind: 'text', shot: -1 }];
  for (let f = 0; f < frames; f++)
    chunks.push({
      start: CAPTION + f * tokensPerFrame,
      end: CAPTION + (f + 1) * tokensPerFrame,
      kind: 'video',
      shot: f,
    });
  return tableFromChunks(chunks);
}

export const CASES: MocCase[] = [
  { name: '1 shot, cf 1', table: buildChunkTable(spec([4], 1)) },
  { name: '2 shots, cf 2, no global caption', table: buildChunkTable(spec([3, 4], 2, 0)) },
  { name: '3 shots, cf 1, a shot without caption', table: buildChunkTable(spec([2, 3, 2], 1, CAPTION, [5, 0, 5])) },
  { name: '4 shots, cf 2', table: buildChunkTable(spec([3, 2, 5, 1], 2)) },
  { name: '5 shots, cf 1', table: buildChunkTable(spec([2, 1, 3, 2, 2], 1)) },
  { name: 'single-shot layout, 6 frames', table: singleShotTable(6) },
];

/** Seeded q, k, v [H, N, D] from N(0, 1). */
export function randomQkv(
  seed: number,
  H: number,
  N: number,
  D: number,
): { q: Float32Array; k: Float32Array; v: Float32Array } {
  const rng = new Rng(seed);
  return { q: rng.normals(H * N * D), k: rng.normals(H * N * D), v: rng.normals(H * N * D) };
}

/** Copies the keys of chunk `from` over those of chunk `to` (same length) for every head. */
export function duplicateChunkKeys(
  k: Float32Array,
  table: ChunkTable,
  H: number,
  D: number,
  from: number,
  to: number,
): void {
  const len = table.end[from] - table.start[from];
  if (table.end[to] - table.start[to] !== len) throw new Error(`chunks ${from} and ${to} differ in length`);
  const N = table.n;
  for (let h = 0; h < H; h++) {
    const src = (h * N + table.start[from]) * D;
    k.copyWithin((h * N + table.start[to]) * D, src, src + len * D);
  }
}

/**
 * MOC.md §3 written out again, independently of the model code: b ∈ M(i) for i in chunk a.
 * causalText (§3b): a caption counts only when it is the global one or that of a shot ≤ a's,
 * and the global caption's queries see no shot's caption.
 */
export function isMandatory(table: ChunkTable, a: number, b: number, causalText = false): boolean {
  if (table.kind[b] !== KIND_TEXT) return table.shot[b] === table.shot[a];
  if (!causalText || table.shot[b] === -1) return true;
  return table.shot[a] !== -1 && table.shot[b] <= table.shot[a];
}

/** MOC.md §3: b is a routing candidate of the (video) queries of chunk a. */
export function isCandidate(table: ChunkTable, a: number, b: number, causal: boolean): boolean {
  return (
    table.kind[a] === KIND_VIDEO && table.kind[b] === KIND_VIDEO && !isMandatory(table, a, b) && (!causal || b < a)
  );
}
