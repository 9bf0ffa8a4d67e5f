/**
 * The routing-trace counts kernel (the visualization's per-layer summaries, model/routing-trace.ts):
 * how many query tokens of chunk a routed to chunk b, per head, summed on the GPU so that a traced
 * step reads back only the pairs that were routed (a few per row) instead of routing [H, N, K].
 * Written in stream order (σ = toStream). WGSL: shaders/trace-counts.wgsl; its output format,
 * `decodeRoutes` and the CPU twin `traceCountsCpu` below.
 *
 * Legend: H heads, N tokens, C chunks, K routed slots.
 */
import countsSource from '../../../shaders/trace-counts.wgsl?raw';
import { grid2d, packParams, type Engine } from '../engine.ts';
import { ShapeError, UnsupportedError } from '../errors.ts';
import { wgsl } from '../shaders.ts';
import { Tensor } from '../tensor.ts';

const WG = 64;

/** The largest count (and chunk id) a route entry holds: both are 16-bit. */
export const MAX_ROUTE_COUNT = 0xffff;

/**
 * Routed query tokens per (head, query chunk, key chunk), sparse by rows (compressed sparse rows).
 * Row r = h·C + a lists the chunks b that tokens of chunk a routed to (head h), b increasing, in
 * entries start[r] … start[r + 1] − 1; pairs not listed have count 0.
 */
export interface RouteRows {
  /** Entry range of each row. [H·C + 1] */
  start: Uint32Array;
  /** Key chunk b of each entry. [entries] */
  to: Uint16Array;
  /** Query tokens of a that routed to b, ≥ 1. [entries] */
  count: Uint16Array;
}

function checkI32(name: string, t: Tensor, size: number): void {
  if (t.dtype !== 'i32' || t.size !== size)
    throw new ShapeError(`${name}: expected i32 [${size}], got ${t.dtype} [${t.shape.join(', ')}]`);
}

/**
 * Records the counts n[h, σ(a), σ(b)] of query tokens of chunk a whose routing (any slot) picked
 * chunk b, in the sparse word format of shaders/trace-counts.wgsl (read `1 + words[0]` words
 * back and pass them to `decodeRoutes`). The caller guarantees every count ≤ MAX_ROUTE_COUNT
 * (with distinct routed chunks per token, as routing gives, a count is at most its chunk's length).
 * @param routed i32 [H, N, K] internal chunk ids, −1 unused. @param chunkStart, chunkEnd,
 * toStream i32 [C] (internal table). @returns u32 [1 + H·C·(C + 2)].
 * @throws UnsupportedError when a row of C counters does not fit workgroup memory or C > 65 536.
 */
export async function traceCounts(
  eng: Engine,
  routed: Tensor,
  chunkStart: Tensor,
  chunkEnd: Tensor,
  toStream: Tensor,
): Promise<Tensor> {
  if (routed.shape.length !== 3 || routed.dtype !== 'i32')
    throw new ShapeError(`traceCounts: routed must be i32 [H, N, K], got ${routed.dtype} [${routed.shape.join(', ')}]`);
  const [H, N, K] = routed.shape;
  const C = chunkStart.size;
  for (const [name, t] of [
    ['chunkStart', chunkStart],
    ['chunkEnd', chunkEnd],
    ['toStream', toStream],
  ] as const)
    checkI32(`traceCounts.${name}`, t, C);
  const maxC = Math.ceil(C / 256) * 256;
  if (maxC * 4 + WG * 4 + 4 > eng.adapter.limits.maxComputeWorkgroupStorageSize) {
    throw new UnsupportedError(
      `traceCounts: ${C} chunks need ${maxC * 4 + WG * 4 + 4} bytes of workgroup memory, more than this adapter's ${eng.adapter.limits.maxComputeWorkgroupStorageSize}`,
    );
  }
  if (C > MAX_ROUTE_COUNT + 1)
    throw new UnsupportedError(
      `traceCounts: ${C} chunks; route entries hold 16-bit chunk ids (at most ${MAX_ROUTE_COUNT + 1} chunks)`,
    );
  const out = eng.tensor([1 + H * C * (C + 2)], 'u32', 'trace.counts');
  eng.clear(new Tensor(out.buffer, [1], 'u32', null)); // the word counter
  const pipeline = await eng.pipeline('trace-counts', wgsl(countsSource), { WG, MAXC: maxC }, String(maxC));
  eng.dispatch({
    pipeline,
    label: 'trace-counts',
    params: packParams([
      ['u32', H],
      ['u32', N],
      ['u32', K],
      ['u32', C],
    ]),
    bindings: [routed, chunkStart, chunkEnd, toStream, out],
    groups: grid2d(H * C, eng.adapter.limits.maxComputeWorkgroupsPerDimension),
  });
  return out;
}

/**
 * The rows of traceCounts' output. @param words at least its first 1 + words[0] words.
 * @throws Error for words that are not that format (a row twice or out of range, a short read).
 */
export function decodeRoutes(words: Uint32Array, H: number, C: number): RouteRows {
  const rows = H * C;
  const used = words[0];
  if (used === undefined || words.length < 1 + used)
    throw new Error(
      `decodeRoutes: ${words.length} words, the counter says ${used === undefined ? 'nothing' : 1 + used}`,
    );
  const at = new Int32Array(rows).fill(-1); // word of each row's first entry
  const len = new Uint32Array(rows);
  for (let w = 1; w < 1 + used;) {
    const r = words[w];
    const m = words[w + 1];
    if (r >= rows || at[r] >= 0 || m === 0 || w + 2 + m > 1 + used)
      throw new Error(`decodeRoutes: bad row header (${r}, ${m}) at word ${w} of ${1 + used}`);
    at[r] = w + 2;
    len[r] = m;
    w += 2 + m;
  }
  const start = new Uint32Array(rows + 1);
  for (let r = 0; r < rows; r++) start[r + 1] = start[r] + len[r];
  const to = new Uint16Array(start[rows]);
  const count = new Uint16Array(start[rows]);
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < len[r]; j++) {
      const e = words[at[r] + j];
      to[start[r] + j] = e >>> 16;
      count[start[r] + j] = e & 0xffff;
    }
  }
  return { start, to, count };
}

/**
 * CPU twin of traceCounts, decoded. @throws RangeError for a count or chunk id beyond 16 bits.
 */
export function traceCountsCpu(
  routed: Int32Array,
  H: number,
  N: number,
  K: number,
  chunkStart: Int32Array,
  chunkEnd: Int32Array,
  toStream: Int32Array,
): RouteRows {
  const C = chunkStart.length;
  if (C > MAX_ROUTE_COUNT + 1) throw new RangeError(`traceCountsCpu: ${C} chunks; route entries hold 16-bit chunk ids`);
  const rows = new Uint32Array(H * C * C); // dense [H, C, C] in stream order, compacted below
  for (let h = 0; h < H; h++) {
    for (let a = 0; a < C; a++) {
      const row = (h * C + toStream[a]) * C;
      for (let i = chunkStart[a]; i < chunkEnd[a]; i++) {
        for (let j = 0; j < K; j++) {
          const r = routed[(h * N + i) * K + j];
          if (r >= 0) rows[row + toStream[r]]++;
        }
      }
    }
  }
  return compactRows(rows, H, C);
}

/** Dense counts [H, C, C] → RouteRows. @throws RangeError for a count beyond MAX_ROUTE_COUNT. */
export function compactRows(dense: ArrayLike<number>, H: number, C: number): RouteRows {
  const start = new Uint32Array(H * C + 1);
  for (let r = 0; r < H * C; r++) {
    let m = 0;
    for (let b = 0; b < C; b++) if (dense[r * C + b] > 0) m++;
    start[r + 1] = start[r] + m;
  }
  const to = new Uint16Array(start[H * C]);
  const count = new Uint16Array(start[H * C]);
  for (let r = 0, e = 0; r < H * C; r++) {
    for (let b = 0; b < C; b++) {
      const n = dense[r * C + b];
      if (n <= 0) continue;
      if (n > MAX_ROUTE_COUNT)
        throw new RangeError(
          `route count ${n} (row ${r}, chunk ${b}) exceeds the 16-bit trace format's ${MAX_ROUTE_COUNT}`,
        );
      to[e] = b;
      count[e++] = n;
    }
  }
  return { start, to, count };
}
