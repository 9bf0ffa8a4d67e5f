/**
 * Routing traces for the visualization: small typed arrays per layer call, cheap enough to
 * collect every sampler step (O(H·N·K + H·C²·D), no N² or N·C work).
 *
 * Legend: H heads, N tokens, D head dim, C chunks, K routed slots.
 */
import { chunkMeanCpu } from '../engine/kernels/chunk-mean.ts';
import { tokenChunks, type ChunkTable } from './layout.ts';
import { isMandatory, type MocDims, type MocMode } from './moc-reference.ts';

export interface RoutingTrace {
  H: number;
  C: number;
  /** counts[h, a, b]: query tokens of chunk a that routed to chunk b (head h). [H, C, C] */
  counts: Uint32Array;
  /** mandatory[a, b] = 1 when chunk b is mandatory for the queries of chunk a. [C, C] */
  mandatory: Uint8Array;
  /**
   * meanScore[h, a, b]: mean over the query tokens i of chunk a of the routing score
   * q[h,i]·φ_h(K_b) (= φ_h(Q_a)·φ_h(K_b), linear in q). Defined for every pair, including text
   * query chunks and non-candidates; mask with `mandatory`/causality as needed. [H, C, C]
   */
  meanScore: Float32Array;
  /** Sparsity per head: 1 − Σ_i |Ω_h(i)| / N². [H] */
  sparsity: Float32Array;
}

/**
 * Builds the trace of one attention call (one layer).
 * @param q [H, N, D] queries; desc [H, C, D] key descriptors; routed [H, N, K] from routing
 *   (entries distinct and never mandatory, as routing and regulariseRouting produce them: the
 *   sparsity here adds chunk lengths without forming Ω; sparsityOf is the general count).
 * @param mode 'dense' reports sparsity 0 and ignores `routed` for it.
 */
export function routingTrace(
  q: ArrayLike<number>,
  desc: ArrayLike<number>,
  routed: Int32Array,
  K: number,
  dims: MocDims,
  table: ChunkTable,
  mode: MocMode = 'moc',
): RoutingTrace {
  return routingTraceFromMeans(chunkMeanCpu(q, dims, table.start, table.end), desc, routed, K, dims, table, mode);
}

/**
 * routingTrace with the per-chunk query means φ_h(Q_a) [H, C, D] given instead of q (computed on
 * the GPU by the chunk-mean kernel, so only [H, C, D] comes back to the CPU, not [H, N, D]).
 */
export function routingTraceFromMeans(
  qMean: ArrayLike<number>,
  desc: ArrayLike<number>,
  routed: Int32Array,
  K: number,
  dims: MocDims,
  table: ChunkTable,
  mode: MocMode = 'moc',
): RoutingTrace {
  const { H, N, D } = dims;
  const C = table.start.length;
  const counts = new Uint32Array(H * C * C);
  const visited = new Float64Array(H);
  const chunkOf = tokenChunks(table);
  const len = (b: number): number => table.end[b] - table.start[b];
  const mandatory = new Uint8Array(C * C);
  const mandTokens = new Float64Array(C); // |M| in tokens, per query chunk
  for (let a = 0; a < C; a++) {
    for (let b = 0; b < C; b++) {
      if (!isMandatory(table, a, b)) continue;
      mandatory[a * C + b] = 1;
      mandTokens[a] += len(b);
    }
  }
  for (let h = 0; h < H; h++) {
    for (let i = 0; i < N; i++) {
      const row = (h * C + chunkOf[i]) * C;
      visited[h] += mandTokens[chunkOf[i]];
      for (let j = 0; j < K; j++) {
        const r = routed[(h * N + i) * K + j];
        if (r < 0) continue;
        counts[row + r]++;
        visited[h] += len(r);
      }
    }
  }
  const sparsity = mode === 'dense' ? new Float32Array(H) : Float32Array.from(visited, (x) => 1 - x / (N * N));
  const meanScore = new Float32Array(H * C * C);
  for (let h = 0; h < H; h++) {
    for (let a = 0; a < C; a++) {
      for (let b = 0; b < C; b++) {
        let s = 0;
        for (let d = 0; d < D; d++) s += qMean[(h * C + a) * D + d] * desc[(h * C + b) * D + d];
        meanScore[(h * C + a) * C + b] = s;
      }
    }
  }
  return { H, C, counts, mandatory, meanScore, sparsity };
}
