/**
 * The workloads of `bench attention`: which sequences it measures and what their routing does.
 *
 * Geometry fixes the problem: heads, head dim, top-k, and the multi-shot layout (frames of so many
 * tokens, shots of so many frames, a caption per shot and a global one, one frame per chunk). The
 * full geometry mirrors the paper's setting; --quick shrinks it for a CPU adapter. `layout` turns
 * a number of shots into the chunk table the kernels read.
 *
 * A regime decides how coherent routing is inside a frame by how q and k are drawn (makeQkv):
 * 'coherent' queries of a frame cluster tightly around a topic, 'mixed' loosely, 'random' not at
 * all. routeStats then measures, on the CPU, what routing did with a layout: the pairs attention
 * must visit, the candidates the router scored, how much extra work design A's per-tile union
 * costs, and how much of the routed work 'grouped-shared' can do in its mandatory tiles.
 */
import { alignTiles, mocPlan, mocSharedChunks } from '../../engine/kernels/moc-attention.ts';
import { Rng } from '../../engine/random.ts';
import { buildChunkTable, KIND_VIDEO, type ChunkTable } from '../../model/layout.ts';
import { isCandidate, sparsityOf } from '../../model/moc-reference.ts';

/** Problem geometry: the paper-like layout, or a small one for --quick. */
export interface Geometry {
  H: number;
  D: number;
  topK: number;
  tokensPerFrame: number;
  framesPerShot: number;
  caption: number;
  shots: number[];
  /** Shots of the size --tune sweeps tiles at. */
  tuneShots: number;
}

export function geometry(quick: boolean): Geometry {
  return quick
    ? { H: 2, D: 64, topK: 4, tokensPerFrame: 16, framesPerShot: 4, caption: 4, shots: [1, 2, 4], tuneShots: 2 }
    : {
        H: 4,
        D: 64,
        topK: 4,
        tokensPerFrame: 256,
        framesPerShot: 16,
        caption: 16,
        shots: [1, 2, 4, 8, 16, 32],
        tuneShots: 8,
      };
}

/** Every case routes causally. */
export const CAUSAL = true;

export function layout(
  g: Geometry,
  shots: number,
  tokensPerFrame = g.tokensPerFrame,
  framesPerShot = g.framesPerShot,
): ChunkTable {
  return buildChunkTable({
    globalCaptionTokens: g.caption,
    shots: Array.from({ length: shots }, () => ({ captionTokens: g.caption, frames: framesPerShot })),
    tokensPerFrame,
    chunkFrames: 1,
  });
}

export type Regime = 'coherent' | 'mixed' | 'random';
const SQRT3 = Math.sqrt(3); // uniform on [−√3, √3): unit variance
export const REGIMES: readonly Regime[] = ['coherent', 'mixed', 'random'];
/** Noise on the queries around their frame's topic (measured: ~7 and ~40 distinct top-4 chunks per 64 queries of a frame, of 496 candidates). */
const QUERY_NOISE: Record<Exclude<Regime, 'random'>, number> = { coherent: 0.1, mixed: 0.5 };

/**
 * Seeded q, k, v [H, N, D], noise uniform with unit variance (cheap at 100M values).
 * 'random': all three pure noise. Otherwise per (head, chunk) a content vector u_c and a topic
 * vector t_c; k = u_c(i) + noise, q = t_c(i) + QUERY_NOISE·noise, v = noise: the queries of one
 * frame pick their top-k chunks by a shared topic, routing across frames differs.
 */
export function makeQkv(
  table: ChunkTable,
  H: number,
  D: number,
  regime: Regime,
  seed: number,
): { q: Float32Array; k: Float32Array; v: Float32Array } {
  const rng = new Rng(seed);
  const noise = () => (rng.next() * 2 - 1) * SQRT3;
  const N = table.n;
  const C = table.start.length;
  const [q, k, v] = [0, 1, 2].map(() => new Float32Array(H * N * D));
  for (let x = 0; x < v.length; x++) v[x] = noise();
  if (regime === 'random') {
    for (let x = 0; x < q.length; x++) [q[x], k[x]] = [noise(), noise()];
    return { q, k, v };
  }
  const u = new Float32Array(D);
  const t = new Float32Array(D);
  for (let h = 0; h < H; h++) {
    for (let c = 0; c < C; c++) {
      for (let d = 0; d < D; d++) [u[d], t[d]] = [noise(), noise()];
      for (let i = table.start[c]; i < table.end[c]; i++) {
        const o = (h * N + i) * D;
        for (let d = 0; d < D; d++) {
          k[o + d] = u[d] + noise();
          q[o + d] = t[d] + QUERY_NOISE[regime] * noise();
        }
      }
    }
  }
  return { q, k, v };
}

/** What routing made of one size (CPU, from the routed table the GPU wrote). */
export interface RouteStats {
  /** Σ over heads and queries of |Ω(i)|: the (query, key) pairs attention must visit. */
  pairs: number;
  sparsity: number;
  /** Σ over heads and video queries of the candidate chunks the router scores (MOC.md §3). */
  candidates: number;
  /** (query, key) pairs design A computes (mandatory keys + its tiles' routed unions), over `pairs`. */
  unionWork: number;
  /** Of the routed pairs, the share 'grouped-shared' walks in its mandatory tiles (chunks every row of a tile routes). */
  sharedRouted: number;
}

export function routeStats(table: ChunkTable, routed: Int32Array, g: Geometry, bq: number): RouteStats {
  const { H, topK: W } = g;
  const N = table.n;
  const C = table.start.length;
  const { sparsity } = sparsityOf(routed, W, { H, N, D: g.D }, table, 'moc');
  let candidates = 0;
  for (let a = 0; a < C; a++) {
    let n = 0;
    for (let b = 0; b < C; b++) if (isCandidate(table, a, b, CAUSAL)) n++;
    candidates += n * (table.end[a] - table.start[a]);
  }
  // design A: every row of a tile walks the segment's mandatory keys and the tile's routed union
  const plan = mocPlan(table, bq);
  const seen = new Int32Array(C).fill(-1);
  let work = 0;
  let mandatory = 0;
  let stamp = 0;
  for (let h = 0; h < H; h++) {
    for (let t = 0; t < plan.tiles; t++) {
      const [q0, q1, seg] = plan.data.subarray(4 * t, 4 * t + 4);
      const [, , shot, nkeys] = plan.data.subarray(4 * (plan.segOff + seg), 4 * (plan.segOff + seg) + 4);
      let keys = nkeys;
      mandatory += nkeys * (q1 - q0);
      stamp++;
      for (let x = (h * N + q0) * W; x < (h * N + q1) * W; x++) {
        const c = routed[x];
        if (c < 0 || c >= C || table.kind[c] !== KIND_VIDEO || table.shot[c] === shot || seen[c] === stamp) continue;
        seen[c] = stamp;
        keys += table.end[c] - table.start[c];
      }
      work += keys * (q1 - q0);
    }
  }
  const pairs = (1 - sparsity) * H * N * N;
  return {
    pairs,
    sparsity,
    candidates: candidates * H,
    unionWork: work / pairs,
    sharedRouted: pairs > mandatory ? sharedPairs(table, routed, g, bq) / (pairs - mandatory) : 0,
  };
}

/** Routed pairs in chunks that every row of a 'grouped-shared' tile routes (moc-attention-share.wgsl). */
function sharedPairs(table: ChunkTable, routed: Int32Array, g: Geometry, bq: number): number {
  const plan = mocPlan(table, bq, alignTiles(table, bq));
  const shared = mocSharedChunks(table, plan, routed, g.H, table.n, g.topK);
  let pairs = 0;
  shared.forEach((c, x) => {
    const t = Math.floor(x / g.topK) % plan.tiles;
    if (c >= 0) pairs += (table.end[c] - table.start[c]) * (plan.data[4 * t + 1] - plan.data[4 * t]);
  });
  return pairs;
}
