/**
 * Internal → stream chunk order for the model tests' references (the model itself writes traces
 * in stream order on the GPU, engine/kernels/trace.ts and the stream-ordered chunk means).
 */
import { compactRows } from '../../src/engine/kernels/trace.ts';
import type { LayerTrace } from '../../src/model/api.ts';

/** A trace over internal chunk ids → the same trace over stream chunk ids. */
export function toStreamOrder(tr: LayerTrace, toStream: Int32Array): LayerTrace {
  const { H, C, D } = tr;
  const dense = new Uint32Array(H * C * C);
  const qMean = new Float32Array(H * C * D);
  const desc = new Float32Array(H * C * D);
  const mandatory = new Uint8Array(C * C);
  for (let a = 0; a < C; a++) {
    for (let b = 0; b < C; b++) mandatory[toStream[a] * C + toStream[b]] = tr.mandatory[a * C + b];
    for (let h = 0; h < H; h++) {
      const r = h * C + a;
      for (let e = tr.routes.start[r]; e < tr.routes.start[r + 1]; e++)
        dense[(h * C + toStream[a]) * C + toStream[tr.routes.to[e]]] = tr.routes.count[e];
      qMean.set(tr.qMean.subarray(r * D, (r + 1) * D), (h * C + toStream[a]) * D);
      desc.set(tr.desc.subarray(r * D, (r + 1) * D), (h * C + toStream[a]) * D);
    }
  }
  return { H, C, D, routes: compactRows(dense, H, C), mandatory, qMean, desc, sparsity: tr.sparsity };
}

/** Routed chunk ids (internal, −1 unused) → stream chunk ids. */
export function routedToStream(routed: Int32Array, toStream: Int32Array): Int32Array {
  return routed.map((r) => (r >= 0 ? toStream[r] : -1));
}
