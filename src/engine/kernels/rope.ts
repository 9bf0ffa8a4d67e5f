/**
 * 3D rotary position embedding (t, y, x) with interleaved pairs, for queries and keys laid out
 * [H, N, D]. The exact convention, which the PyTorch reference follows, is in shaders/rope.wgsl.
 * CPU twin: ropeCpu.
 */
import source from '../../../shaders/rope.wgsl?raw';
import { grid2d, packParams, type Engine } from '../engine.ts';
import { ShapeError } from '../errors.ts';
import { wgsl } from '../shaders.ts';
import type { Tensor } from '../tensor.ts';

const WG = 256;

/** The default base θ of the frequencies θ^(−2i/d_axis). */
export const ROPE_THETA = 10000;

export interface RopeOptions {
  /** Sizes [dt, dy, dx] of the head-dim parts rotated by t, y and x: each even, summing to D. */
  split: readonly [number, number, number];
  /** Frequency base θ > 0; default ROPE_THETA. */
  theta?: number;
}

function checkOptions(opts: RopeOptions, dim: number): number {
  const { split } = opts;
  if (split.length !== 3 || split.some((d) => !Number.isInteger(d) || d < 0 || d % 2 !== 0)) {
    throw new ShapeError(`rope: split [${split.join(', ')}] must be three even sizes ≥ 0 (t, y, x)`);
  }
  if (dim < 2) throw new ShapeError(`rope: the head dim must be ≥ 2, got ${dim}`);
  if (split[0] + split[1] + split[2] !== dim) throw new ShapeError(`rope: split [${split.join(', ')}] sums to ${split[0] + split[1] + split[2]}, not the head dim ${dim}`);
  const theta = opts.theta ?? ROPE_THETA;
  if (!(theta > 0) || !Number.isFinite(theta)) throw new ShapeError(`rope: theta must be a finite number > 0, got ${theta}`);
  return theta;
}

/**
 * Rotates every head of `x` [H, N, D] by the positions `pos` (i32 [N, 3], (t, y, x) per token)
 * into `out`: a new tensor unless given; `out` may be `x` itself (in place). Storage f32 or f16;
 * angles and rotation in f32.
 * @throws ShapeError for a bad split or theta, x not [H, N, D] in f32/f16, pos not i32 [N, 3],
 *   or an `out` whose size or dtype is not x's.
 */
export function rope(eng: Engine, x: Tensor, pos: Tensor, opts: RopeOptions & { out?: Tensor }): Promise<Tensor> {
  if (x.shape.length !== 3) throw new ShapeError(`rope: x must be [heads, tokens, head dim], got [${x.shape.join(', ')}]`);
  if (x.dtype !== 'f32' && x.dtype !== 'f16') throw new ShapeError(`rope: x must be f32 or f16, got ${x.dtype}`);
  const [heads, tokens, dim] = x.shape;
  const theta = checkOptions(opts, dim);
  if (pos.dtype !== 'i32' || pos.shape.length !== 2 || pos.shape[0] !== tokens || pos.shape[1] !== 3) {
    throw new ShapeError(`rope: pos must be i32 [${tokens}, 3] (t, y, x per token), got ${pos.dtype} [${pos.shape.join(', ')}]`);
  }
  const out = opts.out;
  if (out && (out.size !== x.size || out.dtype !== x.dtype)) throw new ShapeError(`rope: out ${out.dtype} [${out.shape.join(', ')}] must match x ${x.dtype} [${x.shape.join(', ')}]`);
  if (out && out.buffer === pos.buffer) throw new ShapeError('rope: out cannot be pos');
  return run(eng, x, pos, [heads, tokens, dim], opts.split, theta, out);
}

async function run(eng: Engine, x: Tensor, pos: Tensor, [heads, tokens, dim]: number[], split: RopeOptions['split'], theta: number, out?: Tensor): Promise<Tensor> {
  const storage = x.dtype === 'f16' ? 'f16' : 'f32';
  const o = out ?? eng.tensor(x.shape, x.dtype, 'rope.out');
  const inPlace = o.buffer === x.buffer;
  const pipeline = await eng.pipeline('rope', wgsl(source, storage), { IN_PLACE: inPlace ? 1 : 0, WG }, storage);
  eng.dispatch({
    pipeline,
    label: 'rope',
    params: packParams([['u32', heads], ['u32', tokens], ['u32', dim], ['u32', split[0]], ['u32', split[1]], ['f32', Math.log2(theta)]]),
    bindings: [inPlace ? pos : x, pos, o],
    groups: grid2d(Math.ceil((heads * tokens * (dim / 2)) / WG)),
  });
  return o;
}

/** CPU twin of `rope` (float64 angles): x is [H, N, D] with D = the split's sum, pos is [N, 3]. */
export function ropeCpu(x: Float32Array, pos: Int32Array, opts: RopeOptions): Float32Array {
  const dim = opts.split[0] + opts.split[1] + opts.split[2];
  const theta = checkOptions(opts, dim);
  const tokens = pos.length / 3;
  if (!Number.isInteger(tokens) || x.length % (tokens * dim) !== 0) throw new ShapeError(`rope: ${x.length} values are not [heads, ${tokens}, ${dim}]`);
  const out = new Float32Array(x.length);
  for (let row = 0; row < x.length / dim; row++) {
    const n = row % tokens;
    let start = 0;
    for (let axis = 0; axis < 3; axis++) {
      const size = opts.split[axis];
      for (let i = 0; i < size / 2; i++) {
        const phi = pos[n * 3 + axis] * theta ** ((-2 * i) / size);
        const j = row * dim + start + 2 * i;
        out[j] = x[j] * Math.cos(phi) - x[j + 1] * Math.sin(phi);
        out[j + 1] = x[j] * Math.sin(phi) + x[j + 1] * Math.cos(phi);
      }
      start += size;
    }
  }
  return out;
}
