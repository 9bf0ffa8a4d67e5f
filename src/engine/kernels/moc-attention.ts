/**
 * MoC fused sparse attention (MOC.md §3–5): out[h,i] = softmax(q[h,i]·k[h,Ω]ᵀ/√D)·v[h,Ω] with
 * Ω(i) the tokens of the mandatory chunks M(i) (every text chunk — with `causalText`, those of
 * shots ≤ the query's — and every chunk of the query's shot) and of the routed chunks R(i) (`routed` [H, N, W], −1 padded). Keys are read in place:
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
 * The chunk table's checks and the query-tile plan both designs read are in moc-plan.ts; design
 * B's host side (grouping, scratch and partial buffers, the shared chunks) in moc-grouped.ts.
 * This module is the entry point and re-exports what callers and tests use from both.
 * Legend: H heads, N tokens, D head dim, C chunks, W slots.
 */
import source from '../../../shaders/moc-attention.wgsl?raw';
import { grid2d, packParams, type Engine } from '../engine.ts';
import { ShapeError, UnsupportedError } from '../errors.ts';
import type { Tensor } from '../tensor.ts';
import {
  FLASH_TILES,
  attendRowCpu,
  attentionSource,
  checkQkv,
  flashAttention,
  flashAttentionCpu,
  flashTileProblem,
  flashWorkgroupBytes,
  type FlashTile,
} from './flash-attention.ts';
import { alignTiles, groupedAttention, type GroupedDesign } from './moc-grouped.ts';
import { KIND_TEXT, checkChunks, planFor, type MocChunks } from './moc-plan.ts';

export { alignTiles, mocSharedChunks, readSharedChunks } from './moc-grouped.ts';
export { checkChunks, mocPlan, type MocChunks, type MocPlan } from './moc-plan.ts';

export type MocAttentionMode = 'moc' | 'dense';

/**
 * MOC.md §5: 'union' (design A) or 'grouped' (design B, the default where it fits), and two
 * variants of B for tuning, 'grouped-direct' and 'grouped-shared'; see the module comment.
 */
export type MocDesign = 'union' | GroupedDesign;

export const MOC_DESIGNS: readonly MocDesign[] = ['union', 'grouped', 'grouped-direct', 'grouped-shared'];

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
  /** MOC.md §3b (mode 'moc'): only captions of shots ≤ the query's are mandatory. Default false. */
  causalText?: boolean;
  /**
   * Mode 'moc': compute only the queries from this token on (a chunk start; default 0). The rows
   * of `out` before it are left undefined; `routed` rows before it must be −1 (design B reads them).
   */
  queryStart?: number;
}

const MAX_BQ = 64; // the WGSL's row masks are two u32 words

/** 'grouped-shared' where B's partial outputs (H·N·W·D f32) fit one binding and one buffer, else 'union'. */
export function defaultMocDesign(eng: Engine, H: number, N: number, W: number, D: number): MocDesign {
  const { maxStorageBufferBindingSize, maxBufferSize } = eng.adapter.limits;
  return 4 * H * N * W * D <= Math.min(maxStorageBufferBindingSize, maxBufferSize) ? 'grouped-shared' : 'union';
}

/** Workgroup memory of the MoC kernel for head dim D, a tile and W routed slots, in bytes. */
export function mocWorkgroupBytes(D: number, t: FlashTile, W: number, design: MocDesign = 'union'): number {
  const wg = (t.bq / 4) * t.ncol;
  // the core's (keyu included), then u32 arrays, each padded to 16 bytes as Dawn counts them:
  // union: rt, scan, ustart, utok, umask; grouped: rowq, rows_slot
  // (moc-attention-share.wgsl, 'grouped-shared' only, is a pass of its own with less)
  const extra = design === 'union' ? [Math.max(t.bq * W, 1), wg, wg + 1, wg, wg * Math.ceil(t.bq / 32)] : [t.bq, t.bq];
  return flashWorkgroupBytes(D, t) + extra.reduce((sum, n) => sum + Math.ceil(n / 4) * 16, 0);
}

/** Why the MoC kernel cannot run tile `t` (D, W) on this engine, or null when it can. */
export function mocTileProblem(
  eng: Engine,
  D: number,
  t: FlashTile,
  W: number,
  design: MocDesign = 'union',
): string | null {
  if (t.bq > MAX_BQ) return `bq ${t.bq} exceeds ${MAX_BQ}`;
  return flashTileProblem(eng, D, t, mocWorkgroupBytes(D, t, W, design));
}

/**
 * The default tile: the first of FLASH_TILES the adapter can hold with W routed slots.
 * @throws UnsupportedError when none fits.
 */
export function mocTile(eng: Engine, D: number, W: number, design: MocDesign = 'union'): FlashTile {
  const t = FLASH_TILES.find((c) => mocTileProblem(eng, D, c, W, design) === null);
  if (!t)
    throw new UnsupportedError(
      `mocAttention: no tile fits this adapter for D=${D} and ${W} routed slots (${mocTileProblem(eng, D, FLASH_TILES[FLASH_TILES.length - 1], W, design)})`,
    );
  return t;
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
  if (mode !== 'moc')
    throw new ShapeError(`mocAttention: mode '${String(mode satisfies never)}' is neither 'moc' nor 'dense'`);
  let W = 0;
  if (routed) {
    const [rh, rn, rw] = routed.shape;
    if (routed.dtype !== 'i32') throw new ShapeError(`mocAttention: routed must be i32, got ${routed.dtype}`);
    if (routed.shape.length !== 3 || rh !== H || rn !== N)
      throw new ShapeError(`mocAttention: routed is [${routed.shape.join(', ')}], expected [${H}, ${N}, W]`);
    W = rw;
  }
  const design = opts.design ?? defaultMocDesign(eng, H, N, W, D);
  if (!MOC_DESIGNS.includes(design))
    throw new ShapeError(`mocAttention: design '${String(design)}' is none of ${MOC_DESIGNS.join(', ')}`);
  const tile = opts.tile ?? mocTile(eng, D, W, design);
  const problem = mocTileProblem(eng, D, tile, W, design);
  if (problem) throw new UnsupportedError(`mocAttention: tile ${JSON.stringify(tile)} at D=${D}, W=${W}: ${problem}`);
  const queryStart = opts.queryStart ?? 0;
  if (queryStart !== 0 && !chunks.start.includes(queryStart))
    throw new ShapeError(`mocAttention: queryStart ${queryStart} is not the start of a chunk`);
  const { plan, buffer } = planFor(
    eng,
    chunks,
    tile.bq,
    design === 'grouped-shared' && alignTiles(chunks, tile.bq),
    opts.causalText ?? false,
    queryStart,
  );
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
  // with no routed entries 'grouped' has nothing to group and runs design A's kernel; its
  // variants run their own mandatory tiles (nothing to group or merge either)
  if (design !== 'union' && (W > 0 || design !== 'grouped')) {
    await groupedAttention(eng, {
      design,
      q,
      k,
      v,
      out,
      routed,
      H,
      N,
      D,
      W,
      C,
      tile,
      plan,
      planBuffer: buffer,
      head,
      constants,
      storage,
    });
    return out;
  }
  const maxG = eng.adapter.limits.maxComputeWorkgroupsPerDimension;
  const mandGroups = H * plan.tiles;
  const pipeline = await eng.pipeline(
    'moc-attention',
    attentionSource(source, storage),
    { ...constants, RW: W },
    storage,
  );
  eng.dispatch({
    pipeline,
    label: 'moc-attention',
    params: packParams(head(mandGroups)),
    bindings: [q, k, v, out, buffer, routed && W > 0 ? routed : buffer],
    groups: grid2d(mandGroups, maxG),
  });
  return out;
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
  opts: { mode?: MocAttentionMode; scale?: number; causalText?: boolean } = {},
): Float32Array {
  const scale = opts.scale ?? 1 / Math.sqrt(D);
  if (opts.mode === 'dense') return flashAttentionCpu(q, k, v, H, N, D, scale);
  const C = chunks.start.length;
  const chunkOf = new Int32Array(N);
  for (let c = 0; c < C; c++) chunkOf.fill(c, chunks.start[c], chunks.end[c]);
  const row = attendRowCpu(q, k, v, N, D, scale);
  const out = new Float32Array(H * N * D);
  const inOmega = new Uint8Array(C);
  const spans: number[] = [];
  for (let h = 0; h < H; h++) {
    for (let i = 0; i < N; i++) {
      const shot = chunks.shot[chunkOf[i]];
      for (let b = 0; b < C; b++) {
        const text = chunks.kind[b] === KIND_TEXT && (!opts.causalText || chunks.shot[b] <= shot);
        inOmega[b] = text || chunks.shot[b] === shot ? 1 : 0;
      }
      for (let j = 0; j < W; j++) {
        const r = routed[(h * N + i) * W + j];
        if (r >= 0 && r < C) inOmega[r] = 1;
      }
      spans.length = 0;
      for (let b = 0; b < C; b++) if (inOmega[b]) spans.push(chunks.start[b], chunks.end[b]);
      row(out, h, i, spans);
    }
  }
  return out;
}
