/**
 * MoC fused sparse attention (MOC.md §3–5): out[h,i] = softmax(q[h,i]·k[h,Ω]ᵀ/√D)·v[h,Ω] with
 * Ω(i) the tokens of the mandatory chunks M(i) (every text chunk and every chunk of the query's
 * shot) and of the routed chunks R(i) (`routed` [H, N, W], −1 padded). Keys are read in place:
 * no gathered K/V copies. Two designs of MOC.md §5, chosen with `opts.design`. The default is
 * 'grouped-shared' (design B with direct addressing and shared routed chunks, below) whenever
 * B's partial buffers fit the adapter's buffer limits, else 'union'. On an H100 (Dawn/Vulkan,
 * `bench attention`, H=4 D=64 k=4, 4k–132k tokens, docs/BENCHMARKS.md) plain B was 1.23× as fast
 * as A with routing coherent within a frame, 1.98× with mixed and 4.34× with random routing: A's
 * cost grows with each tile's union of routed chunks, B's only with the pairs actually visited.
 * 'grouped-shared' was then 1.46–1.51× as fast as plain B (its visited-pair throughput 86–91 % of
 * the dense kernel's at ≥ 32k tokens, against B's 56–61 %): most of B's loss was a binary search
 * per key over the mandatory ranges, not the routing. A stays for adapters whose limits cannot
 * hold B's H·N·W·D partials (e.g. 128k tokens on a browser's default 128 MiB binding limit).
 *
 * - 'union' (design A; shaders/moc-attention.wgsl): a workgroup takes a tile of
 *   queries of one shot (they share M(i)), walks the mandatory keys, then the union of its
 *   queries' routed chunks with a per-query mask. One dispatch; its cost grows with the size of
 *   the tiles' routed unions, so it suits routing that is coherent within a tile (a frame).
 * - 'grouped' (design B, MoBA style; shaders/moc-attention-grouped.wgsl + moc-group.wgsl): the
 *   routed entries are grouped by (head, chunk) on the GPU (count, scan, scatter of query
 *   indices), then one dispatch runs the mandatory tiles and, per routed chunk, tiles of the
 *   queries that route it against that chunk's keys, each writing a normalised partial and its
 *   log-sum-exp; a last pass merges the partials. Cost ∝ the pairs actually visited, whatever
 *   the coherence, plus partial buffers of H·N·W·(D+1) f32 (cached per engine and size).
 *
 * - 'grouped-direct' and 'grouped-shared': variants of B ('grouped-shared' is the default).
 *   'grouped-direct' walks each mandatory tile's main range (its
 *   shot's caption and frames, ~90 % of its keys on the paper's layout) as contiguous tokens,
 *   addressed like the dense kernel, instead of finding every key's token by a binary search over
 *   the mandatory ranges, walks routed chunks the same way, and finds a routed tile's chunk in a
 *   table rather than by a binary search. 'grouped-shared' also lets each mandatory tile walk the
 *   routed chunks that all its rows route (shaders/moc-attention-share.wgsl finds them and takes
 *   their entries out of the grouping: fewer routed tiles, partials and merge traffic when the
 *   queries of a frame agree), with tiles aligned to frames where that is free (alignTiles).
 *
 * All share the key-tile loop (shaders/moc-attention-core.wgsl). Routed entries that are −1,
 * out of range or mandatory are skipped and duplicates count once (Ω is a set), so regularised
 * tables wider than top_k work as they are. Dense mode runs flash attention over all tokens.
 * Legend: H heads, N tokens, D head dim, C chunks, W slots.
 */
import coreSource from '../../../shaders/moc-attention-core.wgsl?raw';
import groupedSource from '../../../shaders/moc-attention-grouped.wgsl?raw';
import source from '../../../shaders/moc-attention.wgsl?raw';
import groupSource from '../../../shaders/moc-group.wgsl?raw';
import shareSource from '../../../shaders/moc-attention-share.wgsl?raw';
import { grid2d, packParams, type Engine } from '../engine.ts';
import { ShapeError, UnsupportedError } from '../errors.ts';
import { wgsl } from '../shaders.ts';
import type { Tensor } from '../tensor.ts';
import { FLASH_TILES, checkQkv, flashAttention, flashAttentionCpu, flashTileProblem, flashWorkgroupBytes, type FlashTile } from './flash-attention.ts';

/** Chunk columns as in the exchange file (MOC.md §4); the model's ChunkTable fits this shape. */
export interface MocChunks {
  readonly start: Int32Array; // [C] first token
  readonly end: Int32Array; // [C] one past the last token
  readonly shot: Int32Array; // [C] shot, −1 for the global caption
  readonly kind: Int32Array; // [C] 0 text, 1 video
}

export type MocAttentionMode = 'moc' | 'dense';

/**
 * MOC.md §5: 'union' (design A) or 'grouped' (design B, the default where it fits), and two
 * variants of B for tuning, 'grouped-direct' and 'grouped-shared'; see the module comment.
 */
export type MocDesign = 'union' | 'grouped' | 'grouped-direct' | 'grouped-shared';

export const MOC_DESIGNS: readonly MocDesign[] = ['union', 'grouped', 'grouped-direct', 'grouped-shared'];

/** The grouped kernel's VARIANT constant per design B flavour (moc-attention-grouped.wgsl). */
const VARIANTS: Partial<Record<MocDesign, number>> = { grouped: 0, 'grouped-direct': 1, 'grouped-shared': 2 };

export interface MocAttentionOptions {
  /** 'moc' (default) or 'dense' (all tokens; `routed` is ignored). */
  mode?: MocAttentionMode;
  out?: Tensor;
  /** Softmax scale; 1/√D by default. */
  scale?: number;
  /** Tile geometry (bq ≤ 64); by default the first of FLASH_TILES that fits. */
  tile?: FlashTile;
  /** Sparse kernel design (mode 'moc'); by default `defaultMocDesign`. Results agree to f32 rounding. */
  design?: MocDesign;
}

const KIND_TEXT = 0;
const KIND_VIDEO = 1;
const MAX_BQ = 64; // the WGSL's row masks are two u32 words

/**
 * Refuses a chunk table that breaks MOC.md §3: columns of different lengths, a kind other than
 * 0/1, chunks that overlap or leave gaps, or that do not cover exactly tokens 0..N−1.
 * @throws ShapeError naming the first problem.
 */
export function checkChunks(chunks: MocChunks, N: number): void {
  const C = chunks.start.length;
  if (chunks.end.length !== C || chunks.shot.length !== C || chunks.kind.length !== C) {
    throw new ShapeError(`chunk columns differ in length: start ${C}, end ${chunks.end.length}, shot ${chunks.shot.length}, kind ${chunks.kind.length}`);
  }
  if (C === 0) throw new ShapeError('the chunk table is empty');
  let at = 0;
  for (let c = 0; c < C; c++) {
    const [s, e, kind] = [chunks.start[c], chunks.end[c], chunks.kind[c]];
    if (kind !== KIND_TEXT && kind !== KIND_VIDEO) throw new ShapeError(`chunk ${c}: kind ${kind} is neither 0 (text) nor 1 (video)`);
    if (s !== at) throw new ShapeError(`chunk ${c} starts at ${s}, expected ${at} (${s > at ? 'a gap' : 'an overlap'})`);
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
 * Assumes a table that passed checkChunks.
 */
export function mocPlan(chunks: MocChunks, bq: number, align = false): MocPlan {
  const C = chunks.start.length;
  const tiles: number[] = [];
  const segs: number[] = [];
  const ranges: number[] = [];
  const splits: number[] = [];
  const rest: number[] = []; // the rest ranges, appended to `ranges` at the end
  const byShot = new Map<number, [number, number, number, number[]]>(); // shot → range0, nranges, nkeys, split
  for (let c0 = 0; c0 < C; ) {
    const shot = chunks.shot[c0];
    let c1 = c0 + 1;
    while (c1 < C && chunks.shot[c1] === shot) c1++;
    let mand = byShot.get(shot);
    if (!mand) {
      const r0 = ranges.length / 4;
      let nkeys = 0;
      for (let b = 0; b < C; b++) {
        if (chunks.kind[b] !== KIND_TEXT && chunks.shot[b] !== shot) continue;
        const [s, e] = [chunks.start[b], chunks.end[b]];
        const last = ranges.length - 4;
        if (ranges.length / 4 > r0 && ranges[last + 1] === s) ranges[last + 1] = e;
        else ranges.push(s, e, nkeys, 0);
        nkeys += e - s;
      }
      const nr = ranges.length / 4 - r0;
      let main = r0;
      for (let r = r0; r < r0 + nr; r++) if (ranges[4 * r + 1] - ranges[4 * r] > ranges[4 * main + 1] - ranges[4 * main]) main = r;
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
      for (let q0 = chunks.start[c]; q0 < stop; q0 += bq) tiles.push(q0, Math.min(q0 + bq, stop), seg, 0);
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
  for (let c = 0; c < C; c++) data.set([chunks.start[c], chunks.end[c], chunks.shot[c], chunks.kind[c]], (chunkOff + c) * 4);
  data.set(splits, splitOff * 4);
  return { data, tiles: T, segOff, rangeOff, chunkOff, splitOff };
}

/**
 * CPU twin of moc-attention-share.wgsl: for each mandatory tile (head h, plan tile t: row
 * h·T + t) the routed chunks that every row of the tile routes and that count (in range, video,
 * of another shot than the tile), in row 0's slot order, −1 padded to W.
 */
export function mocSharedChunks(chunks: MocChunks, plan: MocPlan, routed: ArrayLike<number>, H: number, N: number, W: number): Int32Array {
  const C = chunks.start.length;
  const out = new Int32Array(H * plan.tiles * W).fill(-1);
  const at = (h: number, i: number, j: number) => routed[(h * N + i) * W + j];
  for (let h = 0; h < H; h++) {
    for (let t = 0; t < plan.tiles; t++) {
      const [q0, q1, seg] = plan.data.subarray(4 * t, 4 * t + 3);
      const shot = plan.data[4 * (plan.segOff + seg) + 2];
      let n = 0;
      for (let j = 0; j < W; j++) {
        const c = at(h, q0, j);
        if (c < 0 || c >= C || chunks.kind[c] !== KIND_VIDEO || chunks.shot[c] === shot) continue;
        let ok = true;
        for (let f = 0; f < j && ok; f++) ok = at(h, q0, f) !== c;
        for (let i = q0 + 1; i < q1 && ok; i++) {
          let found = false;
          for (let f = 0; f < W && !found; f++) found = at(h, i, f) === c;
          ok = found;
        }
        if (ok) out[(h * plan.tiles + t) * W + n++] = c;
      }
    }
  }
  return out;
}

/**
 * Whether 'grouped-shared' aligns its query tiles to chunks (mocPlan's `align`): when that adds at
 * most 1/16 more tiles than tiling whole segments (frames of 256 tokens at bq 64: none). Aligned
 * tiles hold the queries of one frame, which mostly route the same chunks.
 */
export function alignTiles(chunks: MocChunks, bq: number): boolean {
  const C = chunks.start.length;
  let aligned = 0;
  let segment = 0;
  for (let c0 = 0; c0 < C; ) {
    let c1 = c0 + 1;
    while (c1 < C && chunks.shot[c1] === chunks.shot[c0]) c1++;
    segment += Math.ceil((chunks.end[c1 - 1] - chunks.start[c0]) / bq);
    for (let c = c0; c < c1; c++) aligned += Math.ceil((chunks.end[c] - chunks.start[c]) / bq);
    c0 = c1;
  }
  return aligned * 16 <= segment * 17;
}

/** 'grouped-shared' where B's partial outputs (H·N·W·D f32) fit one binding and one buffer, else 'union'. */
export function defaultMocDesign(eng: Engine, H: number, N: number, W: number, D: number): MocDesign {
  const { maxStorageBufferBindingSize, maxBufferSize } = eng.adapter.limits;
  return 4 * H * N * W * D <= Math.min(maxStorageBufferBindingSize, maxBufferSize) ? 'grouped-shared' : 'union';
}

/** Workgroup memory of the MoC kernel for head dim D, a tile and W routed slots, in bytes. */

export function mocWorkgroupBytes(D: number, t: FlashTile, W: number, design: MocDesign = 'union'): number {
  const wg = (t.bq / 4) * t.ncol;
  // u32 arrays, each padded to 16 bytes as Dawn counts them: keyu, then
  // union: rt, scan, ustart, utok, umask; grouped: rowq, rows_slot
  // (moc-attention-share.wgsl, 'grouped-shared' only, is a pass of its own with less)
  const extra = design === 'union' ? [Math.max(t.bq * W, 1), wg, wg + 1, wg, wg * Math.ceil(t.bq / 32)] : [t.bq, t.bq];
  return flashWorkgroupBytes(D, t) + [t.bk, ...extra].reduce((sum, n) => sum + Math.ceil(n / 4) * 16, 0);
}

/** Why the MoC kernel cannot run tile `t` (D, W) on this engine, or null when it can. */
export function mocTileProblem(eng: Engine, D: number, t: FlashTile, W: number, design: MocDesign = 'union'): string | null {
  if (t.bq > MAX_BQ) return `bq ${t.bq} exceeds ${MAX_BQ}`;
  return flashTileProblem(eng, D, t, mocWorkgroupBytes(D, t, W, design));
}

/**
 * The default tile: the first of FLASH_TILES the adapter can hold with W routed slots.
 * @throws UnsupportedError when none fits.
 */
export function mocTile(eng: Engine, D: number, W: number, design: MocDesign = 'union'): FlashTile {
  const t = FLASH_TILES.find((c) => mocTileProblem(eng, D, c, W, design) === null);
  if (!t) throw new UnsupportedError(`mocAttention: no tile fits this adapter for D=${D} and ${W} routed slots (${mocTileProblem(eng, D, FLASH_TILES[FLASH_TILES.length - 1], W, design)})`);
  return t;
}

interface CachedPlan {
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

function planFor(eng: Engine, chunks: MocChunks, bq: number, align: boolean): CachedPlan {
  let byTable = planCache.get(eng);
  if (!byTable) planCache.set(eng, (byTable = new WeakMap()));
  let byTiling = byTable.get(chunks.start);
  if (!byTiling) byTable.set(chunks.start, (byTiling = new Map()));
  const snapshot = snapshotOf(chunks);
  const key = `${bq}/${align}`;
  const hit = byTiling.get(key);
  if (hit && hit.snapshot.length === snapshot.length && hit.snapshot.every((x, i) => x === snapshot[i])) return hit;
  if (hit) byTiling.clear(); // the columns changed: every tiling's plan is stale
  const plan = mocPlan(chunks, bq, align);
  const buffer = eng.device.createBuffer({ size: plan.data.byteLength, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST, label: 'moc-attention.plan' });
  eng.device.queue.writeBuffer(buffer, 0, plan.data);
  const entry = { snapshot, plan, buffer };
  byTiling.set(key, entry);
  return entry;
}

/**
 * MoC attention over q, k, v [H, N, D] with the given chunk table and routed chunks
 * (i32 [H, N, W], W ≥ 0; null means no routed chunks). Returns out [H, N, D] (opts.out if given).
 * The chunk table is read on the CPU; its plan is cached per table and rebuilt when it changes.
 * @throws ShapeError (shapes, dtypes, a chunk table that breaks MOC.md §3), UnsupportedError
 * (head dim, f16 without shader-f16, no tile fits the adapter, a dispatch too large).
 */
export async function mocAttention(
  eng: Engine,
  q: Tensor,
  k: Tensor,
  v: Tensor,
  chunks: MocChunks,
  routed: Tensor | null,
  opts: MocAttentionOptions = {},
): Promise<Tensor> {
  const mode = opts.mode ?? 'moc';
  const [H, N, D] = checkQkv(eng, 'mocAttention', q, k, v, opts.out);
  checkChunks(chunks, N);
  if (mode === 'dense') return flashAttention(eng, q, k, v, { out: opts.out, scale: opts.scale });
  if (mode !== 'moc') throw new ShapeError(`mocAttention: mode '${String(mode satisfies never)}' is neither 'moc' nor 'dense'`);
  let W = 0;
  if (routed) {
    const [rh, rn, rw] = routed.shape;
    if (routed.dtype !== 'i32') throw new ShapeError(`mocAttention: routed must be i32, got ${routed.dtype}`);
    if (routed.shape.length !== 3 || rh !== H || rn !== N) throw new ShapeError(`mocAttention: routed is [${routed.shape.join(', ')}], expected [${H}, ${N}, W]`);
    W = rw;
  }
  const design = opts.design ?? defaultMocDesign(eng, H, N, W, D);
  if (!MOC_DESIGNS.includes(design)) throw new ShapeError(`mocAttention: design '${String(design)}' is none of ${MOC_DESIGNS.join(', ')}`);
  const variant = VARIANTS[design];
  // with no routed entries 'grouped' has nothing to group and runs design A's kernel; its
  // variants run their own mandatory tiles (nothing to group or merge either)
  const grouped = variant !== undefined && (W > 0 || variant > 0);
  const tile = opts.tile ?? mocTile(eng, D, W, design);
  const problem = mocTileProblem(eng, D, tile, W, design);
  if (problem) throw new UnsupportedError(`mocAttention: tile ${JSON.stringify(tile)} at D=${D}, W=${W}: ${problem}`);
  const shared = design === 'grouped-shared' && W > 0;
  const { plan, buffer } = planFor(eng, chunks, tile.bq, design === 'grouped-shared' && alignTiles(chunks, tile.bq));
  const storage = q.dtype === 'f16' ? 'f16' : 'f32';
  const out = opts.out ?? eng.tensor([H, N, D], q.dtype, 'moc-attention.out');
  const C = chunks.start.length;
  // the params both attention kernels start with
  const head = (groups: number): Array<['u32' | 'f32', number]> => [
    ['u32', N],
    ['u32', groups],
    ['f32', (opts.scale ?? 1 / Math.sqrt(D)) * Math.LOG2E],
    ['u32', C],
    ['u32', plan.segOff],
    ['u32', plan.rangeOff],
    ['u32', plan.chunkOff],
    ['u32', plan.tiles],
  ];
  const constants = { D, BQ: tile.bq, BK: tile.bk, NCOL: tile.ncol };
  const maxG = eng.adapter.limits.maxComputeWorkgroupsPerDimension;
  const mandGroups = H * plan.tiles;
  if (!grouped) {
    const pipeline = await eng.pipeline('moc-attention', wgsl(`${coreSource}\n${source}`, storage), { ...constants, RW: W }, storage);
    eng.dispatch({
      pipeline,
      label: 'moc-attention',
      params: packParams(head(mandGroups)),
      bindings: [q, k, v, out, buffer, routed && W > 0 ? routed : buffer],
      groups: grid2d(mandGroups, maxG),
    });
    return out;
  }

  // Design B: group, attend (mandatory tiles, then routed tiles), merge. The variants first
  // ('grouped-shared') take the chunks every row of a mandatory tile routes out of the table.
  const HC = H * C;
  const entries = H * N * W;
  // routed tiles: Σ ceil(count / bq) over (head, chunk) ≤ entries / bq + the non-empty (head, chunk)
  const maxTiles = W > 0 ? Math.ceil(entries / tile.bq) + Math.min(HC, entries) : 0;
  // grp: cursors, offs, toffs, list; then (variants) the tile table and the shared chunks
  const listOff = 3 * HC + 2;
  const tileOff = listOff + entries;
  const shrOff = tileOff + (variant! > 0 ? maxTiles : 0);
  const grpWords = shrOff + (shared ? mandGroups * W : 0);
  const scratch = scratchFor(eng, { grp: 4 * grpWords, plse: 4 * H * N * (W + 1), po: 4 * H * N * W * D, rf: shared ? 4 * entries : 0 });
  const attend = await eng.pipeline('moc-attention-grouped', wgsl(`${coreSource}\n${groupedSource}`, storage), { ...constants, VARIANT: variant! }, storage);
  const attendParams = (groups: number) =>
    packParams([...head(groups), ['u32', mandGroups], ['u32', W], ['u32', HC], ['u32', listOff], ['u32', plan.splitOff], ['u32', tileOff], ['u32', shrOff], ['u32', 0]]);
  const attendBindings = [q, k, v, out, buffer, scratch.grp, scratch.po, scratch.plse];
  if (W === 0) {
    // a variant with nothing routed: the mandatory tiles' normalised output is the result
    eng.dispatch({ pipeline: attend, label: 'moc-attention-grouped', params: attendParams(mandGroups), bindings: attendBindings, groups: grid2d(mandGroups, maxG) });
    return out;
  }
  const by64 = (n: number) => grid2d(Math.ceil(n / 64), maxG);
  if (shared) {
    const share = await eng.pipeline('moc-attention-share', wgsl(shareSource, storage), { RW: W, BQ: tile.bq }, storage);
    const shareParams = packParams([
      ['u32', N],
      ['u32', plan.tiles],
      ['u32', plan.segOff],
      ['u32', plan.chunkOff],
      ['u32', C],
      ['u32', shrOff],
      ['u32', mandGroups],
    ]);
    eng.dispatch({ pipeline: share, label: 'moc-attention-share', params: shareParams, bindings: [routed!, buffer, scratch.grp, scratch.rf], groups: grid2d(mandGroups, maxG) });
    lastShared.set(eng, { offset: 4 * shrOff, words: mandGroups * W, buffer: scratch.grp });
  }
  const groupCode = wgsl(groupSource, storage);
  const stage = (s: number) => eng.pipeline('moc-group', groupCode, { STAGE: s, TILES: s === 2 && variant! > 0 ? 1 : 0 }, storage);
  const [zero, count, scan, scatter, merge] = await Promise.all([0, 1, 2, 3, 4].map(stage));
  const groupParams = packParams([
    ['u32', N],
    ['u32', W],
    ['u32', C],
    ['u32', plan.chunkOff],
    ['u32', HC],
    ['u32', tile.bq],
    ['u32', entries],
    ['u32', H * N],
    ['u32', D / 4],
    ['u32', tileOff],
  ]);
  const groupBindings = [shared ? scratch.rf : routed!, buffer, scratch.grp, scratch.plse, scratch.po, out];
  eng.dispatch({ pipeline: zero, label: 'moc-group.zero', params: groupParams, bindings: groupBindings, groups: by64(HC) });
  eng.dispatch({ pipeline: count, label: 'moc-group.count', params: groupParams, bindings: groupBindings, groups: by64(entries) });
  eng.dispatch({ pipeline: scan, label: 'moc-group.scan', params: groupParams, bindings: groupBindings, groups: [1] });
  eng.dispatch({ pipeline: scatter, label: 'moc-group.scatter', params: groupParams, bindings: groupBindings, groups: by64(entries) });
  const groups = mandGroups + maxTiles;
  eng.dispatch({ pipeline: attend, label: 'moc-attention-grouped', params: attendParams(groups), bindings: attendBindings, groups: grid2d(groups, maxG) });
  eng.dispatch({ pipeline: merge, label: 'moc-group.merge', params: groupParams, bindings: groupBindings, groups: by64((H * N * D) / 4) });
  return out;
}

interface Scratch {
  grp: GPUBuffer;
  plse: GPUBuffer;
  po: GPUBuffer;
  /** 'grouped-shared': the routed table without the shared chunks' entries. */
  rf: GPUBuffer;
}

// Design B's scratch buffers, one set per engine, reused while they are large enough. Every call
// rewrites what it reads before reading it, so calls recorded back to back may share them.
// A set replaced by larger sizes (each the larger of the old and the new need, so designs with
// different needs do not take turns replacing it) is destroyed after the work recorded so far
// is submitted.
const scratchCache = new WeakMap<Engine, { bytes: Record<keyof Scratch, number>; bufs: Scratch }>();

function scratchFor(eng: Engine, need: Record<keyof Scratch, number>): Scratch {
  const hit = scratchCache.get(eng);
  const names = Object.keys(need) as Array<keyof Scratch>;
  if (hit && names.every((n) => hit.bytes[n] >= need[n])) return hit.bufs;
  const bytes = { ...need };
  for (const n of names) {
    if (hit) bytes[n] = Math.max(bytes[n], hit.bytes[n]);
    eng.checkBinding(bytes[n], `moc-attention.${n}`);
  }
  if (hit) {
    eng.flush();
    Object.values(hit.bufs).forEach((b: GPUBuffer) => b.destroy());
    lastShared.delete(eng);
  }
  const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC; // COPY_SRC: readSharedChunks
  const make = (name: keyof Scratch) => eng.device.createBuffer({ size: Math.max(16, Math.ceil(bytes[name] / 16) * 16), usage, label: `moc-attention.${name}` });
  const bufs = { grp: make('grp'), plse: make('plse'), po: make('po'), rf: make('rf') };
  scratchCache.set(eng, { bytes, bufs });
  return bufs;
}

// Where the last 'grouped-shared' call on an engine left its shared-chunk table (for tests).
const lastShared = new WeakMap<Engine, { offset: number; words: number; buffer: GPUBuffer }>();

/**
 * Tests: the shared-chunk table (mocSharedChunks' layout) of the last 'grouped-shared' call on
 * this engine with routed slots, as the GPU wrote it; null if there was none.
 */
export async function readSharedChunks(eng: Engine): Promise<Int32Array | null> {
  const at = lastShared.get(eng);
  if (!at) return null;
  eng.flush();
  const size = Math.max(4, 4 * at.words);
  const staging = eng.device.createBuffer({ size, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST, label: 'moc-attention.shared.readback' });
  const enc = eng.device.createCommandEncoder({ label: 'moc-attention.shared.readback' });
  enc.copyBufferToBuffer(at.buffer, at.offset, staging, 0, size);
  eng.device.queue.submit([enc.finish()]);
  await staging.mapAsync(GPUMapMode.READ);
  const words = new Int32Array(staging.getMappedRange().slice(0), 0, at.words);
  staging.unmap();
  staging.destroy();
  return words;
}

/**
 * CPU twin: the chunks of Ω(i) as a mask (mandatory, then valid routed entries), then a plain
 * float64 softmax over their tokens. Dense mode is flashAttentionCpu.
 * @param routed [H, N, W] chunk indices (−1 padded); ignored in dense mode.
 */
export function mocAttentionCpu(
  q: ArrayLike<number>,
  k: ArrayLike<number>,
  v: ArrayLike<number>,
  H: number,
  N: number,
  D: number,
  chunks: MocChunks,
  routed: ArrayLike<number>,
  W: number,
  opts: { mode?: MocAttentionMode; scale?: number } = {},
): Float32Array {
  const scale = opts.scale ?? 1 / Math.sqrt(D);
  if (opts.mode === 'dense') return flashAttentionCpu(q, k, v, H, N, D, scale);
  const C = chunks.start.length;
  const chunkOf = new Int32Array(N);
  for (let c = 0; c < C; c++) chunkOf.fill(c, chunks.start[c], chunks.end[c]);
  const out = new Float32Array(H * N * D);
  const inOmega = new Uint8Array(C);
  const s = new Float64Array(N);
  const acc = new Float64Array(D);
  for (let h = 0; h < H; h++) {
    for (let i = 0; i < N; i++) {
      const shot = chunks.shot[chunkOf[i]];
      for (let b = 0; b < C; b++) inOmega[b] = chunks.kind[b] === KIND_TEXT || chunks.shot[b] === shot ? 1 : 0;
      for (let j = 0; j < W; j++) {
        const r = routed[(h * N + i) * W + j];
        if (r >= 0 && r < C) inOmega[r] = 1;
      }
      const qo = (h * N + i) * D;
      let max = -Infinity;
      for (let b = 0; b < C; b++) {
        if (!inOmega[b]) continue;
        for (let t = chunks.start[b]; t < chunks.end[b]; t++) {
          let dot = 0;
          for (let d = 0; d < D; d++) dot += q[qo + d] * k[(h * N + t) * D + d];
          s[t] = dot * scale;
          if (s[t] > max) max = s[t];
        }
      }
      acc.fill(0);
      let sum = 0;
      for (let b = 0; b < C; b++) {
        if (!inOmega[b]) continue;
        for (let t = chunks.start[b]; t < chunks.end[b]; t++) {
          const w = Math.exp(s[t] - max);
          sum += w;
          for (let d = 0; d < D; d++) acc[d] += w * v[(h * N + t) * D + d];
        }
      }
      for (let d = 0; d < D; d++) out[qo + d] = acc[d] / sum;
    }
  }
  return out;
}
