import { describe, expect, it } from 'vitest';
import { copy, copyCpu } from '../../src/engine/kernels/copy.ts';
import { Rng } from '../../src/engine/random.ts';
import { assertEqualInts } from '../helpers/compare.ts';
import { testEngine } from '../helpers/gpu.ts';

describe('copy kernel', () => {
  for (const n of [1, 7, 257, 4099, 70001]) {
    it(`copies f32 n=${n} bit-exactly, NaN and -0 included`, async () => {
      const eng = await testEngine();
      const a = new Rng(n).normals(n);
      a[0] = -0;
      if (n > 3) a[3] = Number.NaN;
      const src = eng.upload(a, [n]);
      const out = eng.tensor([n]);
      eng.poison(out, 12345);
      await copy(eng, src, out);
      const got = new Uint32Array(((await eng.read(out)) as Float32Array).slice().buffer);
      assertEqualInts(`copy f32[${n}]`, got, new Uint32Array(copyCpu(a).buffer));
      [src, out].forEach((t) => t.dispose());
    });
  }

  it('copies odd-length f16 and i32 tensors', async () => {
    const eng = await testEngine();
    const h = Uint16Array.from({ length: 13 }, (_, i) => 0x3c00 + i * 17);
    const th = eng.upload(h, [13], 'test.h', 'f16');
    const oh = await copy(eng, th);
    expect(oh.shape).toEqual([13]);
    assertEqualInts('copy f16[13]', await eng.read(oh), copyCpu(h));
    const i = Int32Array.from({ length: 9 }, (_, k) => -k * 1000003);
    const ti = eng.upload(i, [3, 3]);
    const oi = eng.tensor([3, 3], 'i32');
    eng.poison(oi);
    await copy(eng, ti, oi);
    assertEqualInts('copy i32[3,3]', await eng.read(oi), copyCpu(i));
    [th, oh, ti, oi].forEach((t) => t.dispose());
  });

  it('refuses an out of another dtype or size', async () => {
    const eng = await testEngine();
    const src = eng.upload(new Float32Array(8), [8]);
    const out = eng.tensor([8], 'i32');
    await expect(copy(eng, src, out)).rejects.toThrow(/copy: out \[8\] i32 does not match src \[8\] f32/);
    [src, out].forEach((t) => t.dispose());
  });
});
