/**
 * Routing-trace kernels (the visualization's per-layer summaries, model/routing-trace.ts), so
 * that a traced step reads back [H, C, C] arrays instead of q [H, N, D] and routing [H, N, K]
 * and leaves the O(H·C²·D) and O(H·N·K) loops to the GPU. Both write stream order (σ =
 * toStream). WGSL: shaders/trace-counts.wgsl, shaders/trace-scores.wgsl; CPU twins below.
 *
 * Legend: H heads, N tokens, D head dim, C chunks, K routed slots.
 */
import countsSource from '../../../shaders/trace-counts.wgsl?raw';
import scoresSource from '../../../shaders/trace-scores.wgsl?raw';
import { grid2d, packParams, type Engine } from '../engine.ts';
import { ShapeError, UnsupportedError } from '../errors.ts';
import { wgsl } from '../shaders.ts';
import type { Tensor } from '../tensor.ts';

const WG = 64;

function checkI32(name: string, t: Tensor, size: number): void {
  if (t.dtype !== 'i32' || t.size !== size) throw new ShapeError(`${name}: expected i32 [${size}], got ${t.dtype} [${t.shape.join(', ')}]`);
}

/**
 * counts[h, σ(a), σ(b)]: query tokens of chunk a whose routing (any slot) picked chunk b.
 * @param routed i32 [H, N, K] internal chunk ids, −1 unused. @param chunkStart, chunkEnd,
 * toStream i32 [C] (internal table). @returns u32 [H, C, C].
 * @throws UnsupportedError when a row of C counters does not fit workgroup memory.
 */
export async function traceCounts(eng: Engine, routed: Tensor, chunkStart: Tensor, chunkEnd: Tensor, toStream: Tensor): Promise<Tensor> {
  if (routed.shape.length !== 3 || routed.dtype !== 'i32') throw new ShapeError(`traceCounts: routed must be i32 [H, N, K], got ${routed.dtype} [${routed.shape.join(', ')}]`);
  const [H, N, K] = routed.shape;
  const C = chunkStart.size;
  for (const [name, t] of [['chunkStart', chunkStart], ['chunkEnd', chunkEnd], ['toStream', toStream]] as const) checkI32(`traceCounts.${name}`, t, C);
  const maxC = Math.ceil(C / 256) * 256;
  if (maxC * 4 > eng.adapter.limits.maxComputeWorkgroupStorageSize) {
    throw new UnsupportedError(`traceCounts: ${C} chunks need ${maxC * 4} bytes of workgroup memory, more than this adapter's ${eng.adapter.limits.maxComputeWorkgroupStorageSize}`);
  }
  const out = eng.tensor([H, C, C], 'u32', 'trace.counts');
  const pipeline = await eng.pipeline('trace-counts', wgsl(countsSource), { WG, MAXC: maxC }, String(maxC));
  eng.dispatch({
    pipeline,
    label: 'trace-counts',
    params: packParams([['u32', H], ['u32', N], ['u32', K], ['u32', C]]),
    bindings: [routed, chunkStart, chunkEnd, toStream, out],
    groups: grid2d(H * C, eng.adapter.limits.maxComputeWorkgroupsPerDimension),
  });
  return out;
}

/**
 * score[h, σ(a), σ(b)] = qMean[h, a] · desc[h, b].
 * @param qMean, desc f32 [H, C, D]. @param toStream i32 [C]. @returns f32 [H, C, C].
 */
export async function traceScores(eng: Engine, qMean: Tensor, desc: Tensor, toStream: Tensor): Promise<Tensor> {
  if (qMean.shape.length !== 3 || qMean.dtype !== 'f32' || desc.dtype !== 'f32' || desc.shape.join() !== qMean.shape.join()) {
    throw new ShapeError(`traceScores: qMean and desc must be f32 [H, C, D] of one shape, got [${qMean.shape.join(', ')}] and [${desc.shape.join(', ')}]`);
  }
  const [H, C, D] = qMean.shape;
  checkI32('traceScores.toStream', toStream, C);
  const out = eng.tensor([H, C, C], 'f32', 'trace.scores');
  const pipeline = await eng.pipeline('trace-scores', wgsl(scoresSource), { WG });
  eng.dispatch({
    pipeline,
    label: 'trace-scores',
    params: packParams([['u32', H], ['u32', C], ['u32', D]]),
    bindings: [qMean, desc, toStream, out],
    groups: grid2d(Math.ceil((H * C * C) / WG), eng.adapter.limits.maxComputeWorkgroupsPerDimension),
  });
  return out;
}

/** CPU twin of traceCounts. */
export function traceCountsCpu(routed: Int32Array, H: number, N: number, K: number, chunkStart: Int32Array, chunkEnd: Int32Array, toStream: Int32Array): Uint32Array {
  const C = chunkStart.length;
  const counts = new Uint32Array(H * C * C);
  for (let h = 0; h < H; h++) {
    for (let a = 0; a < C; a++) {
      const row = (h * C + toStream[a]) * C;
      for (let i = chunkStart[a]; i < chunkEnd[a]; i++) {
        for (let j = 0; j < K; j++) {
          const r = routed[(h * N + i) * K + j];
          if (r >= 0) counts[row + toStream[r]]++;
        }
      }
    }
  }
  return counts;
}

/** CPU twin of traceScores (float64 sums). */
export function traceScoresCpu(qMean: ArrayLike<number>, desc: ArrayLike<number>, H: number, C: number, D: number, toStream: Int32Array): Float32Array {
  const out = new Float32Array(H * C * C);
  for (let h = 0; h < H; h++) {
    for (let a = 0; a < C; a++) {
      for (let b = 0; b < C; b++) {
        let s = 0;
        for (let d = 0; d < D; d++) s += qMean[(h * C + a) * D + d] * desc[(h * C + b) * D + d];
        out[(h * C + toStream[a]) * C + toStream[b]] = s;
      }
    }
  }
  return out;
}
