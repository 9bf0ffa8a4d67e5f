import { describe, expect, it } from 'vitest';
import { ShapeError } from '../../src/engine/errors.ts';
import { norm, normCpu, type NormMode, type NormOptions } from '../../src/engine/kernels/norm.ts';
import { rowLayout, type RowLayout } from '../../src/engine/kernels/row-layout.ts';
import { Rng } from '../../src/engine/random.ts';
import { assertClose } from '../helpers/compare.ts';
import { storageTypes, testEngine } from '../helpers/gpu.ts';
import { poisonedAs, readAsF32, roundAs, uploadAs } from '../helpers/storage.ts';

const eng = await testEngine();

interface Case {
  mode: NormMode;
  weight: boolean;
  bias: boolean;
  eps?: number;
}
const CASES: Case[] = [
  { mode: 'layer', weight: false, bias: false },
  { mode: 'layer', weight: true, bias: false },
  { mode: 'layer', weight: true, bias: true, eps: 1e-2 },
  { mode: 'rms', weight: false, bias: false },
  { mode: 'rms', weight: true, bias: false, eps: 1e-2 },
];
const TOL = { f32: { atol: 1e-5, rtol: 1e-5 }, f16: { atol: 2e-3, rtol: 2e-3 } };

// `offset` shifts the mean so that the layer norm's centring matters; f32 rounding of x then limits
// accuracy to about 1e-7·offset/std, so rows of very few elements (whose spread can be tiny) use 0.
async function check(
  st: 'f32' | 'f16',
  c: Case,
  rows: number,
  dim: number,
  seed: number,
  offset = 10,
  layout?: RowLayout,
): Promise<void> {
  const rng = new Rng(seed);
  const x = roundAs(
    st,
    rng.normals(rows * dim, 2).map((v) => v + offset),
  );
  const w = roundAs(
    st,
    rng.normals(dim).map((v) => 1 + 0.5 * v),
  );
  const b = roundAs(st, rng.normals(dim));
  const tx = uploadAs(eng, st, x, [rows, dim], 'x');
  const tw = c.weight ? uploadAs(eng, st, w, [dim], 'w') : undefined;
  const tb = c.bias ? uploadAs(eng, st, b, [dim], 'b') : undefined;
  const out = poisonedAs(eng, st, [rows, dim]);
  await norm(eng, c.mode, tx, { weight: tw, bias: tb, eps: c.eps, out, layout });
  const opts: NormOptions<Float32Array> = {
    weight: c.weight ? w : undefined,
    bias: c.bias ? b : undefined,
    eps: c.eps,
  };
  const name = `${c.mode} w=${c.weight} b=${c.bias} [${rows}, ${dim}] ${st} ${layout ?? rowLayout(eng)}`;
  assertClose(name, await readAsF32(eng, out), normCpu(c.mode, x, dim, opts), TOL[st]);
  [tx, tw, tb, out].forEach((t) => t?.dispose());
}

// Both row layouts on every adapter (the default is one of them: 'invocation' on SwiftShader).
const LAYOUTS: RowLayout[] = ['workgroup', 'invocation'];

for (const st of ['f32', 'f16'] as const) {
  describe.skipIf(!storageTypes(eng).includes(st))(`norm kernel (${st})`, () => {
    for (const layout of LAYOUTS) {
      for (const dim of [1, 7, 64, 257, 1000]) {
        for (const c of CASES) {
          const rows = dim === 1000 ? 3 : 7;
          it(`${layout}: ${c.mode} weight=${c.weight} bias=${c.bias} rows=${rows} dim=${dim}`, () =>
            check(st, c, rows, dim, dim * 13 + rows, 10, layout));
        }
      }
      it(`${layout}: one row`, () => check(st, CASES[2], 1, 33, 5, 10, layout));
      // more rows than one workgroup of the 'invocation' layout holds, the last one partly full
      it(`${layout}: 130 rows`, () => check(st, CASES[4], 130, 19, 6, 10, layout));
    }
  });
}

describe('norm kernel: geometry and arguments', () => {
  it('rows beyond one grid dimension (2D dispatch)', () => check('f32', CASES[1], 70_001, 3, 99, 0, 'workgroup'));
  it('rows beyond one grid dimension of 64-row workgroups (2D dispatch)', () =>
    check('f32', CASES[1], 64 * 65_535 + 5, 1, 98, 0, 'invocation'));
  it('picks the invocation layout on SwiftShader only', () => {
    const posing = (architecture: string) =>
      ({ adapter: { ...eng.adapter, architecture, device: '', description: '' } }) as typeof eng;
    expect(rowLayout(posing('swiftshader'))).toBe('invocation');
    expect(rowLayout(posing('hopper'))).toBe('workgroup');
  });

  it('normCpu matches hand-computed values', () => {
    const ln = normCpu('layer', new Float32Array([1, 2, 3]), 3, { eps: 0 });
    assertClose('layer [1,2,3]', ln, [-Math.sqrt(1.5), 0, Math.sqrt(1.5)], { atol: 1e-6, rtol: 1e-6 });
    const rms = normCpu('rms', new Float32Array([3, 4]), 2, { eps: 0, weight: new Float32Array([1, 2]) });
    assertClose('rms [3,4]', rms, [3 / Math.sqrt(12.5), 8 / Math.sqrt(12.5)], { atol: 1e-6, rtol: 1e-6 });
  });

  it('refuses bad arguments with ShapeError', () => {
    const x = eng.upload(new Float32Array(14), [2, 7], 'x');
    const w5 = eng.upload(new Float32Array(5), [5], 'w5');
    const w7 = eng.upload(new Float32Array(7), [7], 'w7');
    const wi = eng.upload(new Int32Array(7), [7], 'wi');
    const out = eng.tensor([3, 7]);
    const refuse = (f: () => unknown, msg: RegExp) => {
      expect(f).toThrow(ShapeError);
      expect(f).toThrow(msg);
    };
    refuse(() => norm(eng, 'layer', x, { weight: w5 }), /norm\.layer: weight has 5 elements, want 7/);
    refuse(() => norm(eng, 'rms', x, { bias: w7 }), /norm\.rms: RMS norm takes no bias/);
    refuse(() => norm(eng, 'layer', x, { weight: wi }), /norm\.layer: weight is i32 but x is f32/);
    refuse(() => norm(eng, 'layer', x, { out }), /norm\.layer: out has 21 elements, x \[2, 7\] has 14/);
    refuse(() => norm(eng, 'rms', x, { out: x }), /norm\.rms: out cannot share a buffer with x, weight or bias/);
    refuse(() => norm(eng, 'rms', x, { eps: -1 }), /eps must be a finite number ≥ 0, got -1/);
    refuse(() => norm(eng, 'rms', eng.upload(new Int32Array(4), [4]), {}), /x must be f32 or f16, got i32/);
    refuse(() => norm(eng, 'rms', eng.tensor([3, 0]), {}), /the last dim must be ≥ 1, got 0/);
    refuse(() => normCpu('layer', new Float32Array(10), 3), /10 values are not rows of 3/);
  });
});
