import { describe, expect, it } from 'vitest';
import { ShapeError } from '../../src/engine/errors.ts';
import { rowLayout, type RowLayout } from '../../src/engine/kernels/row-layout.ts';
import { softmax, softmaxCpu } from '../../src/engine/kernels/softmax.ts';
import { Rng } from '../../src/engine/random.ts';
import { assertClose } from '../helpers/compare.ts';
import { storageTypes, testEngine } from '../helpers/gpu.ts';
import { poisonedAs, readAsF32, roundAs, uploadAs } from '../helpers/storage.ts';

const eng = await testEngine();
// Outputs are probabilities in [0, 1]; f16 storage rounds them to 11 significant bits.
const TOL = { f32: { atol: 1e-6, rtol: 1e-5 }, f16: { atol: 1e-4, rtol: 2e-3 } };

async function check(
  st: 'f32' | 'f16',
  rows: number,
  dim: number,
  scale: number,
  seed: number,
  layout?: RowLayout,
): Promise<void> {
  const rng = new Rng(seed);
  const x = roundAs(st, rng.normals(rows * dim, scale));
  const tx = uploadAs(eng, st, x, [rows, dim], 'x');
  const out = poisonedAs(eng, st, [rows, dim]);
  await softmax(eng, tx, out, layout);
  assertClose(
    `softmax [${rows}, ${dim}] ×${scale} ${st} ${layout ?? rowLayout(eng)}`,
    await readAsF32(eng, out),
    softmaxCpu(x, dim),
    TOL[st],
  );
  [tx, out].forEach((t) => t.dispose());
}

// Both row layouts on every adapter (the default is one of them: 'invocation' on SwiftShader).
const LAYOUTS: RowLayout[] = ['workgroup', 'invocation'];

for (const st of ['f32', 'f16'] as const) {
  describe.skipIf(!storageTypes(eng).includes(st))(`softmax kernel (${st})`, () => {
    for (const layout of LAYOUTS) {
      for (const dim of [1, 7, 64, 257, 1000]) {
        for (const rows of [1, 7]) {
          it(`${layout}: rows=${rows} dim=${dim}`, () => check(st, rows, dim, 3, dim * 7 + rows, layout));
        }
      }
      // more rows than one workgroup of the 'invocation' layout holds, the last one partly full
      it(`${layout}: 130 rows`, () => check(st, 130, 33, 3, 8, layout));
      // Logits far beyond exp's range: only the max subtraction keeps these finite.
      it(`${layout}: large logits (±300 in f32, ±30 in f16)`, () =>
        check(st, 5, 129, st === 'f32' ? 100 : 10, 42, layout));
    }
  });
}

describe('softmax kernel: geometry and arguments', () => {
  it('rows beyond one grid dimension (2D dispatch)', () => check('f32', 70_001, 2, 3, 11, 'workgroup'));
  it('rows beyond one grid dimension of 64-row workgroups (2D dispatch)', () =>
    check('f32', 64 * 65_535 + 5, 1, 3, 12, 'invocation'));

  it('keeps a masked logit at zero and rows summing to one', async () => {
    const x = new Float32Array([0, 1, -1e30, 2, 5, 5, 5, 5]);
    const tx = eng.upload(x, [2, 4]);
    const got = (await eng.read(await softmax(eng, tx))) as Float32Array;
    expect(got[2]).toBe(0);
    assertClose('rows', got.slice(4), [0.25, 0.25, 0.25, 0.25], { atol: 1e-7, rtol: 0 });
    assertClose('sum', [got.slice(0, 4).reduce((a, b) => a + b)], [1], { atol: 1e-6, rtol: 0 });
  });

  it('refuses bad arguments with ShapeError', () => {
    const x = eng.upload(new Float32Array(14), [2, 7], 'x');
    const refuse = (f: () => unknown, msg: RegExp) => {
      expect(f).toThrow(ShapeError);
      expect(f).toThrow(msg);
    };
    refuse(() => softmax(eng, x, eng.tensor([2, 6])), /softmax: out has 12 elements, x \[2, 7\] has 14/);
    refuse(() => softmax(eng, x, eng.tensor([2, 7], 'i32')), /softmax: out is i32 but x is f32/);
    refuse(() => softmax(eng, x, x), /softmax: out cannot be x/);
    refuse(() => softmax(eng, eng.upload(new Int32Array(4), [4])), /softmax: x must be f32 or f16, got i32/);
    refuse(() => softmax(eng, eng.tensor([4, 0])), /softmax: the last dim of x \[4, 0\] must be ≥ 1/);
    refuse(() => softmaxCpu(new Float32Array(10), 3), /softmax: 10 values are not rows of 3/);
  });
});
