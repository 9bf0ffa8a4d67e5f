/**
 * adaLN modulation with per-shot parameters: `modulate` (x·(1 + scale) + shift) and
 * `gatedResidual` (res + gate·x), where each token's row picks its shot's parameters through an
 * int32 segment index. WGSL: shaders/modulate.wgsl; CPU twins: modulateCpu, gatedResidualCpu.
 */
import source from '../../../shaders/modulate.wgsl?raw';
import { grid2d, packParams, type Engine } from '../engine.ts';
import { ShapeError } from '../errors.ts';
import { wgsl } from '../shaders.ts';
import type { Tensor } from '../tensor.ts';

const WG = 256;

/**
 * Per-shot parameters for one modulation: a [S, dim] tensor, or chunk `chunk` of the adaLN
 * output [S, k·dim] (columns chunk·dim … (chunk+1)·dim − 1, as torch.chunk(k, dim=1) splits it).
 */
export type ShotTable = Tensor | { table: Tensor; chunk: number };

interface Resolved {
  tensor: Tensor;
  segs: number;
  ld: number;
  off: number;
}

function resolve(op: string, key: string, t: ShotTable, x: Tensor, dim: number): Resolved {
  const whole = 'table' in t ? t.table : t;
  const chunk = 'table' in t ? t.chunk : 0;
  const [segs, width] = whole.shape;
  if (whole.shape.length !== 2 || segs < 1)
    throw new ShapeError(
      `${op}: ${key} must be [shots ≥ 1, ${'table' in t ? 'k·' : ''}${dim}], got [${whole.shape.join(', ')}]`,
    );
  if (whole.dtype !== x.dtype) throw new ShapeError(`${op}: ${key} is ${whole.dtype} but x is ${x.dtype}`);
  if ('table' in t) {
    if (width % dim !== 0) throw new ShapeError(`${op}: ${key} table width ${width} is not a multiple of dim ${dim}`);
    if (!Number.isInteger(chunk) || chunk < 0 || chunk >= width / dim)
      throw new ShapeError(`${op}: ${key} chunk ${chunk} is not in [0, ${width / dim})`);
  } else if (width !== dim)
    throw new ShapeError(`${op}: ${key} [${whole.shape.join(', ')}] must be [shots, ${dim}] (the last dim of x)`);
  return { tensor: whole, segs, ld: width, off: chunk * dim };
}

function checkRows(op: string, x: Tensor, seg: Tensor, out: Tensor | undefined): [number, number] {
  if (x.shape.length !== 2) throw new ShapeError(`${op}: x must be [tokens, dim], got [${x.shape.join(', ')}]`);
  if (x.dtype !== 'f32' && x.dtype !== 'f16') throw new ShapeError(`${op}: x must be f32 or f16, got ${x.dtype}`);
  const [rows, dim] = x.shape;
  if (seg.dtype !== 'i32' || seg.size !== rows)
    throw new ShapeError(
      `${op}: seg must be i32 [${rows}] (one shot index per token), got ${seg.dtype} [${seg.shape.join(', ')}]`,
    );
  if (out && (out.size !== x.size || out.dtype !== x.dtype))
    throw new ShapeError(
      `${op}: out ${out.dtype} [${out.shape.join(', ')}] must match x ${x.dtype} [${x.shape.join(', ')}]`,
    );
  return [rows, dim];
}

function sameShots(op: string, a: Resolved, b: Resolved, keys: string): void {
  if (a.segs !== b.segs)
    throw new ShapeError(`${op}: ${keys} disagree on the number of shots (${a.segs} vs ${b.segs})`);
}

/**
 * out[n] = x[n] · (1 + scale[seg[n]]) + shift[seg[n]] for x [N, dim], seg i32 [N] in [0, S).
 * Rows whose segment is out of range come out NaN.
 * @throws ShapeError for mismatched shapes or dtypes, a chunk out of range, tables of different S.
 */
export function modulate(
  eng: Engine,
  x: Tensor,
  shift: ShotTable,
  scale: ShotTable,
  seg: Tensor,
  out?: Tensor,
): Promise<Tensor> {
  const [rows, dim] = checkRows('modulate', x, seg, out);
  const a = resolve('modulate', 'shift', shift, x, dim);
  const b = resolve('modulate', 'scale', scale, x, dim);
  sameShots('modulate', a, b, 'shift and scale');
  checkAliasing('modulate', out, [x, a.tensor, b.tensor, seg]);
  return run(eng, 0, false, rows, dim, x, a, b, seg, out ?? eng.tensor(x.shape, x.dtype, 'modulate.out'));
}

/**
 * out[n] = res[n] + gate[seg[n]] · x[n] for res and x [N, dim], seg i32 [N] in [0, S). `out` may
 * be `res` itself (the residual stream updated in place). Rows whose segment is out of range
 * come out NaN.
 * @throws ShapeError for mismatched shapes or dtypes or a chunk out of range.
 */
export function gatedResidual(
  eng: Engine,
  res: Tensor,
  gate: ShotTable,
  x: Tensor,
  seg: Tensor,
  out?: Tensor,
): Promise<Tensor> {
  const [rows, dim] = checkRows('gatedResidual', x, seg, out);
  if (res.dtype !== x.dtype || res.size !== x.size)
    throw new ShapeError(
      `gatedResidual: res ${res.dtype} [${res.shape.join(', ')}] must match x ${x.dtype} [${x.shape.join(', ')}]`,
    );
  const a = resolve('gatedResidual', 'gate', gate, x, dim);
  const inPlace = out?.buffer === res.buffer;
  const b: Resolved = { tensor: inPlace ? x : res, segs: a.segs, ld: dim, off: 0 };
  checkAliasing('gatedResidual', out, [x, a.tensor, b.tensor, seg]);
  return run(eng, 1, inPlace, rows, dim, x, a, b, seg, out ?? eng.tensor(x.shape, x.dtype, 'modulate.residual'));
}

function checkAliasing(op: string, out: Tensor | undefined, reads: Tensor[]): void {
  if (out && reads.some((t) => t.buffer === out.buffer))
    throw new ShapeError(
      `${op}: out shares a buffer with an input it reads${op === 'gatedResidual' ? ' (only res may be out)' : ''}`,
    );
}

async function run(
  eng: Engine,
  op: 0 | 1,
  inPlace: boolean,
  rows: number,
  dim: number,
  x: Tensor,
  a: Resolved,
  b: Resolved,
  seg: Tensor,
  out: Tensor,
): Promise<Tensor> {
  const storage = x.dtype === 'f16' ? 'f16' : 'f32';
  const name = op === 0 ? 'modulate' : 'gatedResidual';
  const pipeline = await eng.pipeline(
    'modulate',
    wgsl(source, storage),
    { OP: op, IN_PLACE: inPlace ? 1 : 0, WG },
    storage,
  );
  eng.dispatch({
    pipeline,
    label: `modulate.${name}`,
    params: packParams([
      ['u32', rows],
      ['u32', dim],
      ['u32', a.segs],
      ['u32', a.ld],
      ['u32', a.off],
      ['u32', b.ld],
      ['u32', b.off],
    ]),
    bindings: [x, a.tensor, b.tensor, seg, out],
    groups: grid2d(Math.ceil((rows * dim) / WG)),
  });
  return out;
}

function checkCpu(op: string, x: Float32Array, seg: Int32Array, dim: number, table: Float32Array): void {
  if (x.length !== seg.length * dim)
    throw new ShapeError(`${op}: x has ${x.length} values, want ${seg.length} tokens × ${dim}`);
  if (table.length % dim !== 0 || table.length === 0)
    throw new ShapeError(`${op}: a shot table of ${table.length} values is not [shots, ${dim}]`);
}

/** out[i] = f(i, t) over the [seg.length, dim] output, i = n·dim + d and t = seg[n]·dim + d its shot table entry. */
function perShotCpu(
  op: string,
  seg: Int32Array,
  dim: number,
  segs: number,
  f: (i: number, t: number) => number,
): Float32Array {
  const out = new Float32Array(seg.length * dim);
  for (let n = 0; n < seg.length; n++) {
    const s = seg[n];
    if (!(s >= 0 && s < segs)) throw new ShapeError(`${op}: seg[${n}] = ${s} is not a shot in [0, ${segs})`);
    for (let d = 0; d < dim; d++) out[n * dim + d] = f(n * dim + d, s * dim + d);
  }
  return out;
}

/** CPU twin of `modulate`; shift and scale are [S, dim] arrays. */
export function modulateCpu(
  x: Float32Array,
  shift: Float32Array,
  scale: Float32Array,
  seg: Int32Array,
  dim: number,
): Float32Array {
  checkCpu('modulate', x, seg, dim, shift);
  if (scale.length !== shift.length)
    throw new ShapeError(`modulate: scale has ${scale.length} values, shift ${shift.length}`);
  return perShotCpu('modulate', seg, dim, shift.length / dim, (i, t) => x[i] * (1 + scale[t]) + shift[t]);
}

/** CPU twin of `gatedResidual`; gate is a [S, dim] array. */
export function gatedResidualCpu(
  res: Float32Array,
  gate: Float32Array,
  x: Float32Array,
  seg: Int32Array,
  dim: number,
): Float32Array {
  checkCpu('gatedResidual', x, seg, dim, gate);
  if (res.length !== x.length) throw new ShapeError(`gatedResidual: res has ${res.length} values, x ${x.length}`);
  return perShotCpu('gatedResidual', seg, dim, gate.length / dim, (i, t) => res[i] + gate[t] * x[i]);
}
