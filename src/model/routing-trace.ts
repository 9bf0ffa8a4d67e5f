/**
 * Routing traces for the visualization (LayerTrace, api.ts): small typed arrays per layer call, cheap
 * enough to collect and read back every sampler step (O(H·N·K + H·N·D) to build, no N² or N·C
 * work; O(H·C·D) values plus the routed pairs to keep).
 *
 * Legend: H heads, N tokens, D head dim, C chunks, K routed slots.
 */
import { chunkMeanCpu } from '../engine/kernels/chunk-mean.ts';
import { traceCountsCpu, type RouteRows } from '../engine/kernels/trace.ts';
import type { LayerTrace } from './api.ts';
import type { ChunkTable } from './layout.ts';
import { isMandatory, type MocDims, type MocMode } from './moc-reference.ts';

/**
 * Builds the trace of one attention call (one layer) on the CPU: the reference for the GPU path
 * (dit.ts: chunk means and the trace-counts kernel, engine/kernels/trace.ts, then `traceOf`).
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
): LayerTrace {
  const { H, N } = dims;
  const C = table.start.length;
  const identity = Int32Array.from({ length: C }, (_, c) => c);
  const routes = traceCountsCpu(routed, H, N, K, table.start, table.end, identity);
  const qMean = Float32Array.from(chunkMeanCpu(q, dims, table.start, table.end));
  return traceOf(routes, qMean, Float32Array.from(desc), dims, table, mode);
}

/**
 * The trace from its route counts and score factors (in the order of `table`): adds the
 * mandatory matrix and the sparsity, 1 − (Σ_a |a|·|M(a)| + Σ_{a,b} n[h,a,b]·|b|) / N².
 * @param qMean, desc [H, C, D]; dims.N the tokens, dims.D the head dim.
 */
export function traceOf(
  routes: RouteRows,
  qMean: Float32Array,
  desc: Float32Array,
  dims: MocDims,
  table: ChunkTable,
  mode: MocMode = 'moc',
  causalText = false,
): LayerTrace {
  const { H, N, D } = dims;
  const C = table.start.length;
  const { lens, mandatory, mandPairs } = mandatoryOf(table, causalText);
  const sparsity = new Float32Array(H);
  if (mode !== 'dense') {
    const { start, to, count } = routes;
    for (let h = 0; h < H; h++) {
      let visited = mandPairs;
      for (let e = start[h * C]; e < start[(h + 1) * C]; e++) visited += count[e] * lens[to[e]];
      sparsity[h] = 1 - visited / (N * N);
    }
  }
  return { H, C, D, routes, mandatory, qMean, desc, sparsity };
}

/** Route rows without a route: what 'dense' and 'shot' attention trace (nothing is routed). */
export function emptyRoutes(H: number, C: number): RouteRows {
  return { start: new Uint32Array(H * C + 1), to: new Uint16Array(0), count: new Uint16Array(0) };
}

interface MandatoryInfo {
  lens: Int32Array; // [C] chunk lengths
  mandatory: Uint8Array; // [C, C]
  mandPairs: number; // Σ_a |a|·|M(a)|
}

// Per table (a sequence's tables live as long as the model keeps the sequence): traces of every
// layer and step share one mandatory matrix (per causalText), computed once. Read-only for consumers.
const mandatoryCache = new WeakMap<ChunkTable, Map<boolean, MandatoryInfo>>();

function mandatoryOf(table: ChunkTable, causalText: boolean): MandatoryInfo {
  let byRule = mandatoryCache.get(table);
  if (!byRule) mandatoryCache.set(table, (byRule = new Map()));
  const hit = byRule.get(causalText);
  if (hit) return hit;
  const C = table.start.length;
  const lens = Int32Array.from(table.start, (s, b) => table.end[b] - s);
  const mandatory = new Uint8Array(C * C);
  let mandPairs = 0;
  for (let a = 0; a < C; a++) {
    for (let b = 0; b < C; b++) {
      if (!isMandatory(table, a, b, causalText)) continue;
      mandatory[a * C + b] = 1;
      mandPairs += lens[a] * lens[b];
    }
  }
  const info = { lens, mandatory, mandPairs };
  byRule.set(causalText, info);
  return info;
}
