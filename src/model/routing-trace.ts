/**
 * Routing traces for the visualization: small typed arrays per layer call, cheap enough to
 * collect every sampler step (O(H·N·K + H·C²·D), no N² or N·C work).
 *
 * Legend: H heads, N tokens, D head dim, C chunks, K routed slots.
 */
import { chunkMeanCpu } from '../engine/kernels/chunk-mean.ts';
import { traceCountsCpu, traceScoresCpu } from '../engine/kernels/trace.ts';
import type { ChunkTable } from './layout.ts';
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
 * Builds the trace of one attention call (one layer) on the CPU: the reference for the GPU path
 * (`traceFromCounts` over the trace kernels, engine/kernels/trace.ts).
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
  const { H, N, D } = dims;
  const C = table.start.length;
  const identity = Int32Array.from({ length: C }, (_, c) => c);
  const counts = traceCountsCpu(routed, H, N, K, table.start, table.end, identity);
  const meanScore = traceScoresCpu(chunkMeanCpu(q, dims, table.start, table.end), desc, H, C, D, identity);
  return traceFromCounts(counts, meanScore, H, N, table, mode);
}

/**
 * The trace from its counts and mean scores ([H, C, C], in the order of `table`): adds the
 * mandatory matrix and the sparsity, 1 − (Σ_a |a|·|M(a)| + Σ_{a,b} counts[h,a,b]·|b|) / N².
 */
export function traceFromCounts(counts: Uint32Array, meanScore: Float32Array, H: number, N: number, table: ChunkTable, mode: MocMode = 'moc'): RoutingTrace {
  const C = table.start.length;
  const { lens, mandatory, mandPairs } = mandatoryOf(table);
  const sparsity = new Float32Array(H);
  if (mode !== 'dense') {
    for (let h = 0; h < H; h++) {
      let visited = mandPairs;
      for (let a = 0; a < C; a++) {
        const row = (h * C + a) * C;
        for (let b = 0; b < C; b++) visited += counts[row + b] * lens[b];
      }
      sparsity[h] = 1 - visited / (N * N);
    }
  }
  return { H, C, counts, mandatory, meanScore, sparsity };
}

interface MandatoryInfo {
  lens: Int32Array; // [C] chunk lengths
  mandatory: Uint8Array; // [C, C]
  mandPairs: number; // Σ_a |a|·|M(a)|
}

// Per table (a sequence's tables live as long as the model keeps the sequence): traces of every
// layer and step share one mandatory matrix, computed once. Read-only for consumers.
const mandatoryCache = new WeakMap<ChunkTable, MandatoryInfo>();

function mandatoryOf(table: ChunkTable): MandatoryInfo {
  const hit = mandatoryCache.get(table);
  if (hit) return hit;
  const C = table.start.length;
  const lens = Int32Array.from(table.start, (s, b) => table.end[b] - s);
  const mandatory = new Uint8Array(C * C);
  let mandPairs = 0;
  for (let a = 0; a < C; a++) {
    for (let b = 0; b < C; b++) {
      if (!isMandatory(table, a, b)) continue;
      mandatory[a * C + b] = 1;
      mandPairs += lens[a] * lens[b];
    }
  }
  const info = { lens, mandatory, mandPairs };
  mandatoryCache.set(table, info);
  return info;
}
