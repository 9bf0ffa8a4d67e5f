/**
 * Row gather: out[r] = src[idx[r]] for rows of a given width. The attention head split
 * ([N, 3·H·D] → q, k, v [H, N, D]) and merge ([H, N, D] → [N, H·D]) of the DiT are each one
 * gather with a precomputed i32 map. Bit-exact. WGSL: shaders/gather-rows.wgsl; CPU twin:
 * gatherRowsCpu.
 */
import source from '../../../shaders/gather-rows.wgsl?raw';
import { grid2d, packParams, type Engine } from '../engine.ts';
import { ShapeError } from '../errors.ts';
import { wgsl } from '../shaders.ts';
import type { Tensor } from '../tensor.ts';

const WG = 256;

/**
 * out[r, :] = src[idx[r], :] for src [R, w] (f32 or f16) and idx i32 [M]; `out` holds M·w values
 * of src's dtype in any shape: a new [M, w] tensor (or of `shape`) unless given. Rows whose index
 * is outside [0, R) come out NaN.
 * @throws ShapeError for src not 2D f32/f16, idx not i32, or an `out`/`shape` of another size or
 *   dtype, or an `out` that is an input.
 */
export async function gatherRows(
  eng: Engine,
  src: Tensor,
  idx: Tensor,
  opts: { out?: Tensor; shape?: readonly number[] } = {},
): Promise<Tensor> {
  if (src.shape.length !== 2 || (src.dtype !== 'f32' && src.dtype !== 'f16'))
    throw new ShapeError(
      `gatherRows: src must be f32 or f16 [rows, width], got ${src.dtype} [${src.shape.join(', ')}]`,
    );
  if (idx.dtype !== 'i32')
    throw new ShapeError(`gatherRows: idx must be i32 (one source row per output row), got ${idx.dtype}`);
  const [srcRows, width] = src.shape;
  const rows = idx.size;
  const shape = opts.out?.shape ?? opts.shape ?? [rows, width];
  const size = shape.reduce((a, b) => a * b, 1);
  if (size !== rows * width || (opts.out && opts.out.dtype !== src.dtype)) {
    throw new ShapeError(
      `gatherRows: out ${opts.out?.dtype ?? src.dtype} [${shape.join(', ')}] must hold ${rows} rows of ${width} ${src.dtype}`,
    );
  }
  if (opts.out && (opts.out.buffer === src.buffer || opts.out.buffer === idx.buffer))
    throw new ShapeError('gatherRows: out shares a buffer with an input');
  const out = opts.out ?? eng.tensor(shape, src.dtype, 'gather-rows.out');
  const storage = src.dtype === 'f16' ? 'f16' : 'f32';
  const pipeline = await eng.pipeline('gather-rows', wgsl(source, storage), { WG }, storage);
  eng.dispatch({
    pipeline,
    label: 'gather-rows',
    params: packParams([
      ['u32', rows],
      ['u32', width],
      ['u32', srcRows],
    ]),
    bindings: [src, idx, out],
    groups: grid2d(Math.ceil((rows * width) / WG)),
  });
  return out;
}

/** CPU twin of `gatherRows`: src holds rows of `width`. @throws ShapeError for an index out of range. */
export function gatherRowsCpu(src: Float32Array, idx: Int32Array, width: number): Float32Array {
  const srcRows = src.length / width;
  if (!Number.isInteger(srcRows)) throw new ShapeError(`gatherRows: ${src.length} values are not rows of ${width}`);
  const out = new Float32Array(idx.length * width);
  idx.forEach((s, r) => {
    if (!(s >= 0 && s < srcRows)) throw new ShapeError(`gatherRows: idx[${r}] = ${s} is not a row in [0, ${srcRows})`);
    out.set(src.subarray(s * width, (s + 1) * width), r * width);
  });
  return out;
}
