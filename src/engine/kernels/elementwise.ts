/**
 * Elementwise ops: add, sub, mul (with `b` broadcast by wrapping the flat index) and the
 * activations gelu (tanh form, as in DiT) and silu. WGSL: shaders/elementwise.wgsl.
 */
import source from '../../../shaders/elementwise.wgsl?raw';
import { grid2d, packParams, type Engine } from '../engine.ts';
import { ShapeError } from '../errors.ts';
import { wgsl } from '../shaders.ts';
import type { Tensor } from '../tensor.ts';

export type BinaryOp = 'add' | 'mul' | 'sub';
export type UnaryOp = 'gelu' | 'silu';
const OPS: Record<BinaryOp | UnaryOp, number> = { add: 0, mul: 1, gelu: 2, silu: 3, sub: 4 };
const WG = 256;

async function run(eng: Engine, op: BinaryOp | UnaryOp, a: Tensor, b: Tensor, out?: Tensor): Promise<Tensor> {
  const storage = a.dtype === 'f16' ? 'f16' : 'f32';
  const o = out ?? eng.tensor(a.shape, a.dtype, `elementwise.${op}.out`);
  if (o.size !== a.size) throw new ShapeError(`elementwise.${op}: out has ${o.size} elements, a has ${a.size}`);
  const pipeline = await eng.pipeline(`elementwise`, wgsl(source, storage), { OP: OPS[op], WG }, storage);
  eng.dispatch({
    pipeline,
    label: `elementwise.${op}`,
    params: packParams([
      ['u32', a.size],
      ['u32', Math.max(1, b.size)],
    ]),
    bindings: [a, b, o],
    groups: grid2d(Math.ceil(a.size / WG)),
  });
  return o;
}

/** out = a ∘ b, with b's flat index wrapped (b.size must divide a.size). */
export function binary(eng: Engine, op: BinaryOp, a: Tensor, b: Tensor, out?: Tensor): Promise<Tensor> {
  if (b.size === 0 || a.size % b.size !== 0) {
    throw new ShapeError(
      `elementwise.${op}: b [${b.shape.join(', ')}] does not broadcast over a [${a.shape.join(', ')}]`,
    );
  }
  return run(eng, op, a, b, out);
}

/** out = op(a). */
export function unary(eng: Engine, op: UnaryOp, a: Tensor, out?: Tensor): Promise<Tensor> {
  return run(eng, op, a, a, out);
}

export function geluCpu(x: number): number {
  const u = 0.7978845608028654 * (x + 0.044715 * x * x * x);
  return 0.5 * x * (1 + Math.tanh(u));
}

export function siluCpu(x: number): number {
  return x / (1 + Math.exp(-x));
}

/** CPU twin of binary/unary with the same broadcasting rule. */
export function elementwiseCpu(op: BinaryOp | UnaryOp, a: Float32Array, b: Float32Array = a): Float32Array {
  const out = new Float32Array(a.length);
  for (let i = 0; i < a.length; i++) {
    const x = a[i];
    const y = b[i % b.length];
    switch (op) {
      case 'add':
        out[i] = x + y;
        break;
      case 'sub':
        out[i] = x - y;
        break;
      case 'mul':
        out[i] = x * y;
        break;
      case 'gelu':
        out[i] = geluCpu(x);
        break;
      case 'silu':
        out[i] = siluCpu(x);
        break;
      default:
        op satisfies never;
    }
  }
  return out;
}
