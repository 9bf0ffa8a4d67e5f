/**
 * Internal → stream chunk order for the model tests' references (the model itself writes traces
 * in stream order on the GPU, engine/kernels/trace.ts).
 */
import type { RoutingTrace } from '../../src/model/routing-trace.ts';

/** A trace over internal chunk ids → the same trace over stream chunk ids. */
export function toStreamOrder(tr: RoutingTrace, toStream: Int32Array): RoutingTrace {
  const { H, C } = tr;
  const counts = new Uint32Array(H * C * C);
  const meanScore = new Float32Array(H * C * C);
  const mandatory = new Uint8Array(C * C);
  for (let a = 0; a < C; a++) {
    for (let b = 0; b < C; b++) {
      const [sa, sb] = [toStream[a], toStream[b]];
      mandatory[sa * C + sb] = tr.mandatory[a * C + b];
      for (let h = 0; h < H; h++) {
        counts[(h * C + sa) * C + sb] = tr.counts[(h * C + a) * C + b];
        meanScore[(h * C + sa) * C + sb] = tr.meanScore[(h * C + a) * C + b];
      }
    }
  }
  return { H, C, counts, mandatory, meanScore, sparsity: tr.sparsity };
}

/** Routed chunk ids (internal, −1 unused) → stream chunk ids. */
export function routedToStream(routed: Int32Array, toStream: Int32Array): Int32Array {
  return routed.map((r) => (r >= 0 ? toStream[r] : -1));
}
