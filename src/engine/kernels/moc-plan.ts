/**
 * The chunk table and the query-tile plan that both fused MoC attention designs read
 * (moc-attention.ts for the entry point, moc-grouped.ts for design B).
 *
 * A chunk table is four int32 columns over C chunks; checkChunks holds it to MOC.md §3 before any
 * kernel trusts it. mocPlan turns a checked table into one int32 array of 4-word records: query
 * tiles, segments (runs of chunks whose queries share the same mandatory keys), the merged
 * mandatory token ranges, the chunk table itself, and each segment's split into its main range
 * and the rest. planFor keeps that array on the GPU, one buffer per engine, table and tiling,
 * and builds a new one only when the table's columns have changed since.
 */
import { ShapeError } from '../errors.ts';
import type { Engine } from '../engine.ts';

/** Chunk columns as in the exchange file (MOC.md §4); the model's ChunkTable fits this shape. */
export interface MocChunks {
  readonly start: Int32Array; // [C] first token
  readonly end: Int32Array; // [C] one past the last token
  readonly shot: Int32Array; // [C] shot, −1 for the global caption
  readonly kind: Int32Array; // [C] 0 text, 1 video
}

/** Chunk kinds (the `kind` column). */
export const KIND_TEXT = 0;
export const KIND_VIDEO = 1;

/**
 * Refuses a chunk table that breaks MOC.md §3: columns of different lengths, a kind other than
 * 0/1, chunks that overlap or leave gaps, or that do not cover exactly tokens 0..N−1.
 * @throws ShapeError naming the first problem.
 */
export function checkChunks(chunks: MocChunks, N: number): void {
  const C = chunks.start.length;
  if (chunks.end.length !== C || chunks.shot.length !== C || chunks.kind.length !== C) {
    throw new ShapeError(
      `chunk columns differ in length: start ${C}, end ${chunks.end.length}, shot ${chunks.shot.length}, kind ${chunks.kind.length}`,
    );
  }
  if (C === 0) throw new ShapeError('the chunk table is empty');
  let at = 0;
  for (let c = 0; c < C; c++) {
    const [s, e, kind] = [chunks.start[c], chunks.end[c], chunks.kind[c]];
    if (kind !== KIND_TEXT && kind !== KIND_VIDEO)
      throw new ShapeError(`chunk ${c}: kind ${kind} is neither 0 (text) nor 1 (video)`);
    if (s !== at)
      throw new ShapeError(`chunk ${c} starts at ${s}, expected ${at} (${s > at ? 'a gap' : 'an overlap'})`);
    if (e < s) throw new ShapeError(`chunk ${c} ends at ${e}, before its start ${s}`);
    at = e;
  }
  if (at !== N) throw new ShapeError(`chunks cover tokens 0..${at}, but N = ${N}`);
}

/** The wrapper-built work description the kernel reads (records of 4 int32, see the WGSL). */
export interface MocPlan {
  data: Int32Array<ArrayBuffer>;
  tiles: number;
  segOff: number;
  rangeOff: number;
  chunkOff: number;
  /** Per segment (main start, main end, rest range0, rest nranges): see mocPlan. */
  splitOff: number;
}

/**
 * Splits the sequence into segments (runs of consecutive chunks of one shot: their queries share
 * M(i)), the segments into query tiles of at most `bq` tokens, and lists each segment's mandatory
 * chunks as merged token ranges. With `align`, a tile never spans two chunks (the tiles of a chunk
 * start at its first token), so the rows of a tile are the queries of one frame. Each segment's
 * mandatory ranges are also split (`splits`) into its longest range (the `main` range: for video,
 * the shot's caption and frames) and the rest, listed again with their own positions from 0.
 * With `causalText` (MOC.md §3b) a segment's mandatory text is only the captions of shots ≤ its
 * own (the global caption's segment: itself); its queries, text or video, still share M(i).
 * With `queryStart` (a chunk start) only the queries from that token on get tiles: the rows of
 * earlier queries are not computed (a cached prefix, dit.ts).
 * Assumes a table that passed checkChunks.
 */
export function mocPlan(chunks: MocChunks, bq: number, align = false, causalText = false, queryStart = 0): MocPlan {
  const C = chunks.start.length;
  const tiles: number[] = [];
  const segs: number[] = [];
  const ranges: number[] = [];
  const splits: number[] = [];
  const rest: number[] = []; // the rest ranges, appended to `ranges` at the end
  const byShot = new Map<number, [number, number, number, number[]]>(); // shot → range0, nranges, nkeys, split
  for (let c0 = 0; c0 < C;) {
    const shot = chunks.shot[c0];
    let c1 = c0 + 1;
    while (c1 < C && chunks.shot[c1] === shot) c1++;
    let mand = byShot.get(shot);
    if (!mand) {
      const r0 = ranges.length / 4;
      let nkeys = 0;
      for (let b = 0; b < C; b++) {
        const text = chunks.kind[b] === KIND_TEXT && (!causalText || chunks.shot[b] <= shot);
        if (!text && chunks.shot[b] !== shot) continue;
        const [s, e] = [chunks.start[b], chunks.end[b]];
        const last = ranges.length - 4;
        if (ranges.length / 4 > r0 && ranges[last + 1] === s) ranges[last + 1] = e;
        else ranges.push(s, e, nkeys, 0);
        nkeys += e - s;
      }
      const nr = ranges.length / 4 - r0;
      let main = r0;
      for (let r = r0; r < r0 + nr; r++)
        if (ranges[4 * r + 1] - ranges[4 * r] > ranges[4 * main + 1] - ranges[4 * main]) main = r;
      const split = nr ? [ranges[4 * main], ranges[4 * main + 1], rest.length / 4, nr - 1] : [0, 0, 0, 0];
      for (let r = r0, v = 0; r < r0 + nr; r++) {
        if (r === main) continue;
        rest.push(ranges[4 * r], ranges[4 * r + 1], v, 0);
        v += ranges[4 * r + 1] - ranges[4 * r];
      }
      mand = [r0, nr, nkeys, split];
      byShot.set(shot, mand);
    }
    const seg = segs.length / 4;
    segs.push(mand[0], mand[1], shot, mand[2]);
    splits.push(...mand[3]);
    const end = chunks.end[c1 - 1];
    for (let c = c0; c < c1; c++) {
      const stop = align ? chunks.end[c] : end;
      for (let q0 = Math.max(chunks.start[c], queryStart); q0 < stop; q0 += bq)
        tiles.push(q0, Math.min(q0 + bq, stop), seg, 0);
      if (!align) break;
    }
    c0 = c1;
  }
  const T = tiles.length / 4;
  const S = segs.length / 4;
  const segOff = T;
  const rangeOff = segOff + S;
  const nregular = ranges.length / 4;
  for (let s = 0; s < S; s++) splits[4 * s + 2] += nregular; // rest ranges follow the regular ones
  ranges.push(...rest);
  const chunkOff = rangeOff + ranges.length / 4;
  const splitOff = chunkOff + C;
  const data = new Int32Array((splitOff + S) * 4);
  data.set(tiles, 0);
  data.set(segs, segOff * 4);
  data.set(ranges, rangeOff * 4);
  for (let c = 0; c < C; c++)
    data.set([chunks.start[c], chunks.end[c], chunks.shot[c], chunks.kind[c]], (chunkOff + c) * 4);
  data.set(splits, splitOff * 4);
  return { data, tiles: T, segOff, rangeOff, chunkOff, splitOff };
}

/** A plan, its GPU copy, and the table columns it was built from. */
export interface CachedPlan {
  snapshot: Int32Array;
  plan: MocPlan;
  buffer: GPUBuffer;
}

// Plans by engine, chunk table (its `start` column) and tiling (bq, align), rebuilt when the
// columns change. A buffer replaced here is not destroyed (recorded work may still read it); it
// is freed when collected.
const planCache = new WeakMap<Engine, WeakMap<Int32Array, Map<string, CachedPlan>>>();

function snapshotOf(c: MocChunks): Int32Array {
  const C = c.start.length;
  const s = new Int32Array(4 * C);
  s.set(c.start, 0);
  s.set(c.end, C);
  s.set(c.shot, 2 * C);
  s.set(c.kind, 3 * C);
  return s;
}

/** The plan of `chunks` at tiling (bq, align), causalText and queryStart on the GPU: cached, or built and uploaded now. */
export function planFor(
  eng: Engine,
  chunks: MocChunks,
  bq: number,
  align: boolean,
  causalText = false,
  queryStart = 0,
): CachedPlan {
  let byTable = planCache.get(eng);
  if (!byTable) planCache.set(eng, (byTable = new WeakMap()));
  let byTiling = byTable.get(chunks.start);
  if (!byTiling) byTable.set(chunks.start, (byTiling = new Map()));
  const snapshot = snapshotOf(chunks);
  const key = `${bq}/${align}/${causalText}/${queryStart}`;
  const hit = byTiling.get(key);
  if (hit && hit.snapshot.length === snapshot.length && hit.snapshot.every((x, i) => x === snapshot[i])) return hit;
  if (hit) byTiling.clear(); // the columns changed: every tiling's plan is stale
  const plan = mocPlan(chunks, bq, align, causalText, queryStart);
  const buffer = eng.device.createBuffer({
    size: plan.data.byteLength,
    usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST,
    label: 'moc-attention.plan',
  });
  eng.device.queue.writeBuffer(buffer, 0, plan.data);
  const entry = { snapshot, plan, buffer };
  byTiling.set(key, entry);
  return entry;
}
