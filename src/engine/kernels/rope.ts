/**
 * Rotary position embedding from tables, for queries and keys laid out [H, N, D]: every head of
 * token n turns its adjacent pairs by row n of the cos and signed-sin tables [N, D] (the model
 * builds them: ropeTables in src/model/dit-state.ts, float positions and all). The exact formula
 * is in shaders/rope.wgsl. CPU twin: ropeCpu.
 */
import source from '../../../shaders/rope.wgsl?raw';
import { grid2d, packParams, type Engine } from '../engine.ts';
import { ShapeError } from '../errors.ts';
import { wgsl } from '../shaders.ts';
import type { Tensor } from '../tensor.ts';

const WG = 256;

function checkTable(key: string, t: Tensor, tokens: number, dim: number): void {
  if (t.dtype !== 'f32' || t.shape.length !== 2 || t.shape[0] !== tokens || t.shape[1] !== dim) {
    throw new ShapeError(
      `rope: ${key} must be f32 [${tokens}, ${dim}] (one row per token), got ${t.dtype} [${t.shape.join(', ')}]`,
    );
  }
}

/**
 * Rotates every head of `x` [H, N, D] by the tables `cos` and `sin` (f32 [N, D], sin signed) into
 * `out`: a new tensor unless given; `out` may be `x` itself (in place). Storage f32 or f16;
 * arithmetic in f32.
 * @throws ShapeError for x not [H, N, D] in f32/f16 with D even, tables not f32 [N, D], or an
 *   `out` whose size or dtype is not x's or that is a table.
 */
export function rope(eng: Engine, x: Tensor, cos: Tensor, sin: Tensor, out?: Tensor): Promise<Tensor> {
  if (x.shape.length !== 3)
    throw new ShapeError(`rope: x must be [heads, tokens, head dim], got [${x.shape.join(', ')}]`);
  if (x.dtype !== 'f32' && x.dtype !== 'f16') throw new ShapeError(`rope: x must be f32 or f16, got ${x.dtype}`);
  const [heads, tokens, dim] = x.shape;
  if (dim < 2 || dim % 2 !== 0) throw new ShapeError(`rope: the head dim must be even and ≥ 2, got ${dim}`);
  checkTable('cos', cos, tokens, dim);
  checkTable('sin', sin, tokens, dim);
  if (out && (out.size !== x.size || out.dtype !== x.dtype))
    throw new ShapeError(
      `rope: out ${out.dtype} [${out.shape.join(', ')}] must match x ${x.dtype} [${x.shape.join(', ')}]`,
    );
  if (out && (out.buffer === cos.buffer || out.buffer === sin.buffer))
    throw new ShapeError('rope: out cannot be a table');
  return run(eng, x, cos, sin, [heads, tokens, dim], out);
}

async function run(
  eng: Engine,
  x: Tensor,
  cos: Tensor,
  sin: Tensor,
  [heads, tokens, dim]: number[],
  out?: Tensor,
): Promise<Tensor> {
  const storage = x.dtype === 'f16' ? 'f16' : 'f32';
  const o = out ?? eng.tensor(x.shape, x.dtype, 'rope.out');
  const inPlace = o.buffer === x.buffer;
  const pipeline = await eng.pipeline('rope', wgsl(source, storage), { IN_PLACE: inPlace ? 1 : 0, WG }, storage);
  eng.dispatch({
    pipeline,
    label: 'rope',
    params: packParams([
      ['u32', heads],
      ['u32', tokens],
      ['u32', dim],
    ]),
    bindings: [inPlace ? cos : x, cos, sin, o],
    groups: grid2d(Math.ceil((heads * tokens * (dim / 2)) / WG)),
  });
  return o;
}

/** CPU twin of `rope` (f32 products and sum): x is [H, N, D], cos and sin [N, D]. */
export function ropeCpu(x: Float32Array, cos: Float32Array, sin: Float32Array, dim: number): Float32Array {
  const tokens = cos.length / dim;
  if (dim < 2 || dim % 2 !== 0 || !Number.isInteger(tokens) || sin.length !== cos.length)
    throw new ShapeError(
      `rope: tables of ${cos.length} and ${sin.length} values are not [tokens, ${dim}] with ${dim} even`,
    );
  if (tokens === 0 || x.length % (tokens * dim) !== 0)
    throw new ShapeError(`rope: ${x.length} values are not [heads, ${tokens}, ${dim}]`);
  const f = Math.fround;
  const out = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const t = i % (tokens * dim);
    out[i] = f(f(x[i] * cos[t]) + f(x[i ^ 1] * sin[t]));
  }
  return out;
}
