import { describe, expect, it } from 'vitest';
import { ShapeError } from '../../src/engine/errors.ts';
import { rope, ropeCpu, type RopeOptions } from '../../src/engine/kernels/rope.ts';
import { Rng } from '../../src/engine/random.ts';
import { assertClose } from '../helpers/compare.ts';
import { storageTypes, testEngine } from '../helpers/gpu.ts';
import { poisonedAs, readAsF32, roundAs, uploadAs } from '../helpers/storage.ts';

const eng = await testEngine();
// f32 angles carry a relative error of a few 1e-7, so the absolute error grows with the position.
const TOL = { f32: { atol: 5e-5, rtol: 1e-5 }, f16: { atol: 4e-3, rtol: 2e-3 } };

interface Case {
  heads: number;
  tokens: number;
  split: RopeOptions['split'];
  maxPos: [number, number, number];
  theta?: number;
}
const CASES: Case[] = [
  { heads: 1, tokens: 1, split: [2, 2, 2], maxPos: [4, 8, 8] },
  { heads: 3, tokens: 7, split: [8, 12, 12], maxPos: [16, 16, 16] },
  { heads: 2, tokens: 257, split: [16, 24, 24], maxPos: [32, 64, 64] },
  { heads: 5, tokens: 33, split: [0, 4, 6], maxPos: [1, 40, 40], theta: 100 },
  { heads: 1, tokens: 64, split: [6, 2, 0], maxPos: [1000, 3, 1], theta: 1e4 },
];

async function check(st: 'f32' | 'f16', c: Case, inPlace: boolean, seed: number): Promise<void> {
  const rng = new Rng(seed);
  const dim = c.split[0] + c.split[1] + c.split[2];
  const x = roundAs(st, rng.normals(c.heads * c.tokens * dim));
  const pos = Int32Array.from({ length: c.tokens * 3 }, (_, i) => rng.int(c.maxPos[i % 3]));
  const tx = uploadAs(eng, st, x, [c.heads, c.tokens, dim], 'x');
  const tpos = eng.upload(pos, [c.tokens, 3], 'pos');
  const out = inPlace ? tx : poisonedAs(eng, st, [c.heads, c.tokens, dim]);
  await rope(eng, tx, tpos, { split: c.split, theta: c.theta, out });
  const name = `rope [${c.heads}, ${c.tokens}, ${dim}] split ${c.split.join('/')}${inPlace ? ' in place' : ''} ${st}`;
  assertClose(name, await readAsF32(eng, out), ropeCpu(x, pos, c), TOL[st]);
  [tx, tpos, out].forEach((t) => t.dispose());
}

for (const st of ['f32', 'f16'] as const) {
  describe.skipIf(!storageTypes(eng).includes(st))(`rope kernel (${st})`, () => {
    CASES.forEach((c, k) => {
      for (const inPlace of [false, true]) {
        it(`H=${c.heads} N=${c.tokens} split=${c.split.join('/')} theta=${c.theta ?? 'default'}${inPlace ? ' in place' : ''}`, () => check(st, c, inPlace, 17 * k + Number(inPlace)));
      }
    });
  });
}

describe('rope kernel: convention and arguments', () => {
  it('ropeCpu follows the documented convention', () => {
    // One t pair turned by φ = 1: (1, 0) → (cos 1, sin 1).
    assertClose('one pair', ropeCpu(new Float32Array([1, 0]), new Int32Array([1, 0, 0]), { split: [2, 0, 0] }), [Math.cos(1), Math.sin(1)], { atol: 1e-7, rtol: 0 });
    // Pair i = 1 of a y part of size 4 with θ = 100 turns by pos_y · 100^(−2/4) = 3 · 0.1; t and x parts by pos 0 and 2.
    const got = ropeCpu(new Float32Array([5, 6, 1, 1, 0, 1, 1, 0]), new Int32Array([0, 3, 2]), { split: [2, 4, 2], theta: 100 });
    const want = [5, 6, Math.cos(3) - Math.sin(3), Math.sin(3) + Math.cos(3), -Math.sin(0.3), Math.cos(0.3), Math.cos(2), Math.sin(2)];
    assertClose('split', got, want, { atol: 1e-6, rtol: 0 });
  });

  it('is a rotation: the GPU keeps each pair\'s norm at large positions', async () => {
    const x = new Float32Array(8).fill(1);
    const pos = new Int32Array([100_000, 54_321, 7]);
    const got = (await eng.read(await rope(eng, eng.upload(x, [1, 1, 8]), eng.upload(pos, [1, 3]), { split: [4, 2, 2] }))) as Float32Array;
    const norms = [0, 2, 4, 6].map((j) => Math.hypot(got[j], got[j + 1]));
    assertClose('pair norms', norms, [Math.SQRT2, Math.SQRT2, Math.SQRT2, Math.SQRT2], { atol: 1e-5, rtol: 0 });
    assertClose('angles', got, ropeCpu(x, pos, { split: [4, 2, 2] }), { atol: 2e-2, rtol: 0 });
  });

  it('refuses bad arguments with ShapeError', () => {
    const x = eng.upload(new Float32Array(2 * 5 * 8), [2, 5, 8], 'x');
    const pos = eng.upload(new Int32Array(15), [5, 3], 'pos');
    const refuse = (f: () => unknown, msg: RegExp) => {
      expect(f).toThrow(ShapeError);
      expect(f).toThrow(msg);
    };
    refuse(() => rope(eng, x, pos, { split: [2, 2, 2] }), /rope: split \[2, 2, 2\] sums to 6, not the head dim 8/);
    refuse(() => rope(eng, x, pos, { split: [3, 3, 2] }), /rope: split \[3, 3, 2\] must be three even sizes/);
    refuse(() => rope(eng, x, pos, { split: [4, 2, 2], theta: 0 }), /rope: theta must be a finite number > 0, got 0/);
    refuse(() => rope(eng, x, eng.upload(new Int32Array(10), [5, 2]), { split: [4, 2, 2] }), /rope: pos must be i32 \[5, 3\] \(t, y, x per token\), got i32 \[5, 2\]/);
    refuse(() => rope(eng, x, eng.upload(new Float32Array(15), [5, 3]), { split: [4, 2, 2] }), /pos must be i32 \[5, 3\].*got f32/);
    refuse(() => rope(eng, eng.tensor([10, 8]), pos, { split: [4, 2, 2] }), /rope: x must be \[heads, tokens, head dim\], got \[10, 8\]/);
    refuse(() => rope(eng, x, pos, { split: [4, 2, 2], out: eng.tensor([2, 5, 6]) }), /rope: out f32 \[2, 5, 6\] must match x f32 \[2, 5, 8\]/);
    refuse(() => ropeCpu(new Float32Array(7), new Int32Array(3), { split: [2, 2, 2] }), /rope: 7 values are not \[heads, 1, 6\]/);
  });
});
