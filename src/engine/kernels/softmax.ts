/**
 * Row softmax over the last dimension, numerically stable (the row max is subtracted before
 * exp). WGSL: shaders/softmax.wgsl; CPU twin: softmaxCpu.
 */
import source from '../../../shaders/softmax.wgsl?raw';
import { packParams, type Engine } from '../engine.ts';
import { ShapeError } from '../errors.ts';
import { wgsl } from '../shaders.ts';
import type { Tensor } from '../tensor.ts';
import { rowDispatch, rowLayout, type RowLayout } from './row-layout.ts';

/**
 * out[r, j] = exp(x[r, j] − max_r) / Σ_k exp(x[r, k] − max_r) for every row r of `x` (any rank
 * ≥ 1; the last dimension is the row), into `out` (a new tensor of x's shape and dtype unless
 * given). Storage f32 or f16; arithmetic f32. Inputs must be finite (mask with a large negative
 * number, not −inf). `layout`: how rows map to invocations, by default rowLayout(eng).
 * @throws ShapeError for an empty last dim, a dtype other than f32/f16, or an `out` whose size or
 *   dtype is not x's or that is x.
 */
export function softmax(eng: Engine, x: Tensor, out?: Tensor, layout?: RowLayout): Promise<Tensor> {
  if (x.shape.length < 1) throw new ShapeError('softmax: x must have at least one dimension');
  const dim = x.shape[x.shape.length - 1];
  if (dim < 1) throw new ShapeError(`softmax: the last dim of x [${x.shape.join(', ')}] must be ≥ 1`);
  if (x.dtype !== 'f32' && x.dtype !== 'f16') throw new ShapeError(`softmax: x must be f32 or f16, got ${x.dtype}`);
  if (out && out.size !== x.size)
    throw new ShapeError(`softmax: out has ${out.size} elements, x [${x.shape.join(', ')}] has ${x.size}`);
  if (out && out.dtype !== x.dtype) throw new ShapeError(`softmax: out is ${out.dtype} but x is ${x.dtype}`);
  if (out && out.buffer === x.buffer) throw new ShapeError('softmax: out cannot be x (x is read three times)');
  return run(eng, x, dim, out, layout ?? rowLayout(eng));
}

async function run(eng: Engine, x: Tensor, dim: number, out: Tensor | undefined, layout: RowLayout): Promise<Tensor> {
  const storage = x.dtype === 'f16' ? 'f16' : 'f32';
  const rows = x.size / dim;
  const o = out ?? eng.tensor(x.shape, x.dtype, 'softmax.out');
  const d = rowDispatch(layout, rows, dim);
  const pipeline = await eng.pipeline(
    'softmax',
    wgsl(`${d.source}\n${source}`, storage),
    { WG: d.wg },
    `${storage}.${layout}`,
  );
  eng.dispatch({
    pipeline,
    label: 'softmax',
    params: packParams([
      ['u32', rows],
      ['u32', dim],
    ]),
    bindings: [x, o],
    groups: d.groups,
  });
  return o;
}

/** CPU twin of `softmax` on a row-major array whose last dimension is `dim` (float64 sums). */
export function softmaxCpu(x: Float32Array, dim: number): Float32Array {
  if (!Number.isInteger(dim) || dim < 1) throw new ShapeError(`softmax: the last dim must be ≥ 1, got ${dim}`);
  if (x.length % dim !== 0) throw new ShapeError(`softmax: ${x.length} values are not rows of ${dim}`);
  const out = new Float32Array(x.length);
  for (let base = 0; base < x.length; base += dim) {
    let m = -Infinity;
    for (let j = 0; j < dim; j++) m = Math.max(m, x[base + j]);
    let s = 0;
    for (let j = 0; j < dim; j++) s += Math.exp(x[base + j] - m);
    for (let j = 0; j < dim; j++) out[base + j] = Math.exp(x[base + j] - m) / s;
  }
  return out;
}
