/**
 * Layer norm (optional affine weight and bias) and RMS norm (optional weight) over the last
 * dimension of a tensor: DiT's pre-modulation LayerNorm (no affine, eps 1e-6) and the QK
 * RMS-norm. WGSL: shaders/norm.wgsl; CPU twin: normCpu.
 */
import source from '../../../shaders/norm.wgsl?raw';
import { packParams, type Engine } from '../engine.ts';
import { ShapeError } from '../errors.ts';
import { wgsl } from '../shaders.ts';
import type { Tensor } from '../tensor.ts';
import { rowDispatch, rowLayout, type RowLayout } from './row-layout.ts';

export type NormMode = 'layer' | 'rms';
const MODES: Record<NormMode, number> = { layer: 0, rms: 1 };

/** The eps both norms use unless told otherwise (DiT's LayerNorm and the QK RMS-norm). */
export const NORM_EPS = 1e-6;

export interface NormOptions<A> {
  /** [dim], multiplies the normalised row. */
  weight?: A;
  /** [dim], added after the weight; layer norm only. */
  bias?: A;
  /** Added to the variance (layer) or the mean square (rms); default NORM_EPS. */
  eps?: number;
}

function checkArgs<A>(mode: NormMode, dim: number, opts: NormOptions<A>, len: (a: A) => number): void {
  const name = `norm.${mode}`;
  if (!Number.isInteger(dim) || dim < 1) throw new ShapeError(`${name}: the last dim must be ≥ 1, got ${dim}`);
  if (mode === 'rms' && opts.bias) throw new ShapeError(`${name}: RMS norm takes no bias`);
  for (const key of ['weight', 'bias'] as const) {
    const a = opts[key];
    if (a && len(a) !== dim)
      throw new ShapeError(`${name}: ${key} has ${len(a)} elements, want ${dim} (the last dim of x)`);
  }
  const eps = opts.eps ?? NORM_EPS;
  if (!(eps >= 0) || !Number.isFinite(eps))
    throw new ShapeError(`${name}: eps must be a finite number ≥ 0, got ${eps}`);
}

export interface NormGpuOptions extends NormOptions<Tensor> {
  out?: Tensor;
  /** How rows map to invocations; by default rowLayout(eng) (per adapter). */
  layout?: RowLayout;
}

/**
 * Normalises every row of `x` (any rank ≥ 1; the last dimension is the row) into `out` (a new
 * tensor of x's shape and dtype unless given). Storage f32 or f16; arithmetic f32.
 * @throws ShapeError for an empty last dim, a weight/bias whose size is not that dim, a bias
 *   with mode 'rms', a dtype that is not x's, an `out` of another size or aliasing an input, or
 *   a bad eps.
 */
export function norm(eng: Engine, mode: NormMode, x: Tensor, opts: NormGpuOptions = {}): Promise<Tensor> {
  const name = `norm.${mode}`;
  if (x.shape.length < 1) throw new ShapeError(`${name}: x must have at least one dimension`);
  const dim = x.shape[x.shape.length - 1];
  checkArgs(mode, dim, opts, (t) => t.size);
  if (x.dtype !== 'f32' && x.dtype !== 'f16') throw new ShapeError(`${name}: x must be f32 or f16, got ${x.dtype}`);
  for (const [key, t] of [
    ['weight', opts.weight],
    ['bias', opts.bias],
    ['out', opts.out],
  ] as const) {
    if (t && t.dtype !== x.dtype) throw new ShapeError(`${name}: ${key} is ${t.dtype} but x is ${x.dtype}`);
  }
  if (opts.out && opts.out.size !== x.size)
    throw new ShapeError(`${name}: out has ${opts.out.size} elements, x [${x.shape.join(', ')}] has ${x.size}`);
  if (opts.out && [x, opts.weight, opts.bias].some((t) => t?.buffer === opts.out?.buffer))
    throw new ShapeError(`${name}: out cannot share a buffer with x, weight or bias`);
  return run(eng, mode, x, dim, opts);
}

async function run(eng: Engine, mode: NormMode, x: Tensor, dim: number, opts: NormGpuOptions): Promise<Tensor> {
  const storage = x.dtype === 'f16' ? 'f16' : 'f32';
  const rows = x.size / dim;
  const out = opts.out ?? eng.tensor(x.shape, x.dtype, `norm.${mode}.out`);
  const layout = opts.layout ?? rowLayout(eng);
  const d = rowDispatch(layout, rows, dim);
  const constants = { MODE: MODES[mode], HAS_WEIGHT: opts.weight ? 1 : 0, HAS_BIAS: opts.bias ? 1 : 0, WG: d.wg };
  const pipeline = await eng.pipeline(
    'norm',
    wgsl(`${d.source}\n${source}`, storage),
    constants,
    `${storage}.${layout}`,
  );
  eng.dispatch({
    pipeline,
    label: `norm.${mode}`,
    params: packParams([
      ['u32', rows],
      ['u32', dim],
      ['f32', opts.eps ?? NORM_EPS],
    ]),
    bindings: [x, opts.weight ?? x, opts.bias ?? x, out],
    groups: d.groups,
  });
  return out;
}

/** CPU twin of `norm` on a row-major array whose last dimension is `dim` (float64 sums). */
export function normCpu(
  mode: NormMode,
  x: Float32Array,
  dim: number,
  opts: NormOptions<Float32Array> = {},
): Float32Array {
  checkArgs(mode, dim, opts, (a) => a.length);
  if (x.length % dim !== 0) throw new ShapeError(`norm.${mode}: ${x.length} values are not rows of ${dim}`);
  const eps = opts.eps ?? NORM_EPS;
  const out = new Float32Array(x.length);
  for (let base = 0; base < x.length; base += dim) {
    let mean = 0;
    if (mode === 'layer') {
      for (let j = 0; j < dim; j++) mean += x[base + j];
      mean /= dim;
    }
    let q = 0;
    for (let j = 0; j < dim; j++) q += (x[base + j] - mean) ** 2;
    const inv = 1 / Math.sqrt(q / dim + eps);
    for (let j = 0; j < dim; j++) {
      let y = (x[base + j] - mean) * inv;
      if (opts.weight) y *= opts.weight[j];
      if (opts.bias) y += opts.bias[j];
      out[base + j] = y;
    }
  }
  return out;
}
