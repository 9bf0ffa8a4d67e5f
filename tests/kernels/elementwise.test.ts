import { describe, expect, it } from 'vitest';
import { binary, elementwiseCpu, unary, type BinaryOp, type UnaryOp } from '../../src/engine/kernels/elementwise.ts';
import { Rng } from '../../src/engine/random.ts';
import { assertClose } from '../helpers/compare.ts';
import { testEngine } from '../helpers/gpu.ts';

describe('elementwise kernels (f32)', () => {
  for (const n of [1, 7, 257, 4099]) {
    for (const op of ['add', 'sub', 'mul'] as BinaryOp[]) {
      it(`${op} n=${n} with a broadcast row`, async () => {
        const eng = await testEngine();
        const rng = new Rng(n * 31 + op.length);
        const nb = n % 7 === 0 ? 7 : 1;
        const a = rng.normals(n);
        const b = rng.normals(nb);
        const ta = eng.upload(a, [n]);
        const tb = eng.upload(b, [nb]);
        const out = eng.tensor([n]);
        eng.poison(out);
        await binary(eng, op, ta, tb, out);
        assertClose(`${op}[${n}]`, await eng.read(out), elementwiseCpu(op, a, b), { atol: 1e-6, rtol: 1e-6 });
        [ta, tb, out].forEach((t) => t.dispose());
      });
    }
    for (const op of ['gelu', 'silu'] as UnaryOp[]) {
      it(`${op} n=${n}`, async () => {
        const eng = await testEngine();
        const a = new Rng(n + 5).normals(n, 4);
        if (n > 4) a[3] = 60; // large inputs must not give NaN
        const ta = eng.upload(a, [n]);
        const out = eng.tensor([n]);
        eng.poison(out);
        await unary(eng, op, ta, out);
        assertClose(`${op}[${n}]`, await eng.read(out), elementwiseCpu(op, a), { atol: 1e-5, rtol: 1e-5 });
        [ta, out].forEach((t) => t.dispose());
      });
    }
  }

  it('refuses a b that does not broadcast', async () => {
    const eng = await testEngine();
    const a = eng.upload(new Float32Array(10), [10]);
    const b = eng.upload(new Float32Array(3), [3]);
    expect(() => binary(eng, 'add', a, b)).toThrow(/does not broadcast/);
  });
});
