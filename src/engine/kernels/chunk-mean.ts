/**
 * Chunk means: MoC key descriptors φ(K_c) (MOC.md §3; of k_route under a routing view, §3b),
 * also usable for query means (routing traces). WGSL: shaders/chunk-mean.wgsl; CPU twin: chunkMeanCpu.
 *
 * Legend: H heads, N tokens, D head dim, C chunks. The chunk columns must form a valid table
 * (contiguous, non-empty, within N); the model's layout module validates them.
 */
import source from '../../../shaders/chunk-mean.wgsl?raw';
import { grid2d, packParams, type Engine } from '../engine.ts';
import { ShapeError } from '../errors.ts';
import { wgsl } from '../shaders.ts';
import type { Tensor } from '../tensor.ts';

const WG = 64;

/** Shape of a head-major tensor [H, N, D]. */
export interface HeadDims {
  H: number;
  N: number;
  D: number;
}

function dimsOf(name: string, t: Tensor): HeadDims {
  if (t.shape.length !== 3) throw new ShapeError(`${name}: expected [H, N, D], got [${t.shape.join(', ')}]`);
  const [H, N, D] = t.shape;
  return { H, N, D };
}

/**
 * desc[h, c, :] = mean of x[h, t, :] over the tokens t of chunk c, in f32.
 * @param x [H, N, D] f32 or f16.
 * @param chunkStart, chunkEnd i32 [C].
 * @param out f32 [H, C, D] (allocated when omitted).
 * @throws ShapeError for mismatched shapes or dtypes.
 */
export async function chunkMean(
  eng: Engine,
  x: Tensor,
  chunkStart: Tensor,
  chunkEnd: Tensor,
  out?: Tensor,
): Promise<Tensor> {
  const { H, N, D } = dimsOf('chunkMean.x', x);
  const C = chunkStart.size;
  if (chunkStart.dtype !== 'i32' || chunkEnd.dtype !== 'i32' || chunkEnd.size !== C) {
    throw new ShapeError(
      `chunkMean: chunk_start/chunk_end must be i32 [C] of equal length, got ${chunkStart.dtype} [${chunkStart.size}] and ${chunkEnd.dtype} [${chunkEnd.size}]`,
    );
  }
  const o = out ?? eng.tensor([H, C, D], 'f32', 'chunk-mean.out');
  if (o.dtype !== 'f32' || o.size !== H * C * D)
    throw new ShapeError(`chunkMean: out must be f32 [${H}, ${C}, ${D}], got ${o.dtype} [${o.shape.join(', ')}]`);
  const storage = x.dtype === 'f16' ? 'f16' : 'f32';
  const pipeline = await eng.pipeline('chunk-mean', wgsl(source, storage), { WG }, storage);
  eng.dispatch({
    pipeline,
    label: 'chunk-mean',
    params: packParams([
      ['u32', H],
      ['u32', N],
      ['u32', D],
      ['u32', C],
    ]),
    bindings: [x, chunkStart, chunkEnd, o],
    groups: grid2d(H * C, eng.adapter.limits.maxComputeWorkgroupsPerDimension),
  });
  return o;
}

/**
 * CPU twin of chunkMean with float64 accumulation: desc [H, C, D] as Float64Array.
 * Tokens are summed in order, so chunks with equal keys and length get equal descriptors.
 */
export function chunkMeanCpu(
  x: ArrayLike<number>,
  dims: HeadDims,
  chunkStart: Int32Array,
  chunkEnd: Int32Array,
): Float64Array {
  const { H, N, D } = dims;
  const C = chunkStart.length;
  const desc = new Float64Array(H * C * D);
  const acc = new Float64Array(D);
  for (let h = 0; h < H; h++) {
    for (let c = 0; c < C; c++) {
      acc.fill(0);
      for (let t = chunkStart[c]; t < chunkEnd[c]; t++) {
        const base = (h * N + t) * D;
        for (let d = 0; d < D; d++) acc[d] += x[base + d];
      }
      const len = chunkEnd[c] - chunkStart[c];
      const o = (h * C + c) * D;
      for (let d = 0; d < D; d++) desc[o + d] = acc[d] / len;
    }
  }
  return desc;
}
