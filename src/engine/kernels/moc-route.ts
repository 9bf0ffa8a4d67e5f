/**
 * MoC routing (MOC.md §3): per (head, video query) the top-K candidate chunks by the raw dot
 * product q[h,i]·desc[h,c]. WGSL: shaders/moc-route.wgsl; CPU twin: mocRouteCpu.
 * With a routing view (MOC.md §3b) `q` is q_route and `desc` the chunk means of k_route; the
 * kernel is the same, only its inputs differ.
 *
 * Legend: H heads, N tokens, D head dim, C chunks, K routed slots (top_k ≤ MAX_TOP_K).
 * Candidates of a video query i in chunk c(i), shot s(i): video chunks b with shot[b] ≠ s(i)
 * (the mandatory chunks are excluded by construction) and, when causal, b < c(i). Text queries
 * route nothing. Ties go to the lower chunk index; output in descending score order, -1 padded.
 *
 * Exactness: the GPU sums scores in f32, the twin in f64, so two scores closer than f32 rounding
 * (~1e-6 relative) may order differently. Exact ties (bitwise-equal descriptors, e.g. two chunks
 * with identical keys) are ordered identically by both. Tests use data with no near ties.
 */
import source from '../../../shaders/moc-route.wgsl?raw';
import { grid2d, packParams, type Engine } from '../engine.ts';
import { ShapeError } from '../errors.ts';
import { wgsl } from '../shaders.ts';
import type { Tensor } from '../tensor.ts';

/** Largest top_k the kernel keeps in registers. */
export const MAX_TOP_K = 16;
const WG = 64;

export interface RouteOptions {
  topK: number;
  causal: boolean;
  /** Route only queries i ≥ queryStart (default 0); earlier rows of `out` are left as they are. */
  queryStart?: number;
}

/** Chunk columns on the GPU (i32 [C] each). */
export interface ChunkColumns<T> {
  start: T;
  kind: T;
  shot: T;
}

/**
 * routed[h, i, :] = the top-K candidate chunks of query i for head h.
 * @param q [H, N, D] f32 or f16: the queries, or q_route under a routing view.
 * @param desc f32 [H, C, D] from chunkMean over the keys (k_route under a routing view).
 * @param out i32 [H, N, K] (allocated when omitted).
 * @throws ShapeError for mismatched shapes or dtypes, or topK outside 0..MAX_TOP_K.
 */
export async function mocRoute(
  eng: Engine,
  q: Tensor,
  desc: Tensor,
  chunks: ChunkColumns<Tensor>,
  opts: RouteOptions,
  out?: Tensor,
): Promise<Tensor> {
  if (q.shape.length !== 3) throw new ShapeError(`mocRoute.q: expected [H, N, D], got [${q.shape.join(', ')}]`);
  const [H, N, D] = q.shape;
  const C = chunks.start.size;
  const K = opts.topK;
  if (!Number.isInteger(K) || K < 0 || K > MAX_TOP_K)
    throw new ShapeError(`mocRoute: topK must be an integer in 0..${MAX_TOP_K}, got ${K}`);
  if (desc.dtype !== 'f32' || desc.size !== H * C * D)
    throw new ShapeError(
      `mocRoute.desc: expected f32 [${H}, ${C}, ${D}], got ${desc.dtype} [${desc.shape.join(', ')}]`,
    );
  for (const [name, t] of Object.entries(chunks)) {
    if (t.dtype !== 'i32' || t.size !== C)
      throw new ShapeError(`mocRoute.chunk_${name}: expected i32 [${C}], got ${t.dtype} [${t.shape.join(', ')}]`);
  }
  const o = out ?? eng.tensor([H, N, K], 'i32', 'moc-route.routed');
  if (o.dtype !== 'i32' || o.size !== H * N * K)
    throw new ShapeError(`mocRoute.out: expected i32 [${H}, ${N}, ${K}], got ${o.dtype} [${o.shape.join(', ')}]`);
  const q0 = opts.queryStart ?? 0;
  if (!Number.isInteger(q0) || q0 < 0 || q0 > N)
    throw new ShapeError(`mocRoute: queryStart must be an integer in 0..${N}, got ${q0}`);
  if (K === 0 || N === q0 || H === 0) return o;
  const storage = q.dtype === 'f16' ? 'f16' : 'f32';
  const pipeline = await eng.pipeline('moc-route', wgsl(source, storage), { WG }, storage);
  const groupsPerHead = Math.ceil((N - q0) / WG);
  eng.dispatch({
    pipeline,
    label: 'moc-route',
    params: packParams([
      ['u32', H],
      ['u32', N],
      ['u32', D],
      ['u32', C],
      ['u32', K],
      ['u32', opts.causal ? 1 : 0],
      ['u32', groupsPerHead],
      ['u32', q0],
    ]),
    bindings: [q, desc, chunks.start, chunks.kind, chunks.shot, o],
    groups: grid2d(H * groupsPerHead, eng.adapter.limits.maxComputeWorkgroupsPerDimension),
  });
  return o;
}

/**
 * CPU twin of mocRoute: the same insertion top-K, scores in float64.
 * @param q [H, N, D]; desc [H, C, D]; chunks: Int32Array columns (start from a valid table).
 * @returns routed, Int32Array [H, N, K] (rows before queryStart −1; the GPU leaves them unwritten).
 */
export function mocRouteCpu(
  q: ArrayLike<number>,
  desc: ArrayLike<number>,
  dims: { H: number; N: number; D: number },
  chunks: ChunkColumns<Int32Array>,
  opts: RouteOptions,
): Int32Array {
  const { H, N, D } = dims;
  const C = chunks.start.length;
  const K = opts.topK;
  const routed = new Int32Array(H * N * K).fill(-1);
  const q0 = opts.queryStart ?? 0;
  const bestS = new Float64Array(K);
  const bestC = new Int32Array(K);
  for (let h = 0; h < H; h++) {
    let ci = 0;
    for (let i = 0; i < N; i++) {
      while (ci + 1 < C && chunks.start[ci + 1] <= i) ci++;
      if (chunks.kind[ci] !== 1 || i < q0) continue;
      const si = chunks.shot[ci];
      let n = 0;
      for (let b = 0; b < C; b++) {
        if (chunks.kind[b] !== 1 || chunks.shot[b] === si || (opts.causal && b >= ci)) continue;
        let s = 0;
        for (let d = 0; d < D; d++) s += q[(h * N + i) * D + d] * desc[(h * C + b) * D + d];
        let pos: number;
        if (n < K) pos = n++;
        else if (K > 0 && s > bestS[K - 1]) pos = K - 1;
        else continue;
        while (pos > 0 && s > bestS[pos - 1]) {
          bestS[pos] = bestS[pos - 1];
          bestC[pos] = bestC[pos - 1];
          pos--;
        }
        bestS[pos] = s;
        bestC[pos] = b;
      }
      routed.set(bestC.subarray(0, n), (h * N + i) * K);
    }
  }
  return routed;
}
