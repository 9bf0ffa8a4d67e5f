import { describe, expect, it } from 'vitest';
import { ShapeError } from '../../src/engine/errors.ts';
import { rope, ropeCpu } from '../../src/engine/kernels/rope.ts';
import { Rng } from '../../src/engine/random.ts';
import { ropeTables } from '../../src/model/dit-state.ts';
import { assertClose } from '../helpers/compare.ts';
import { storageTypes, testEngine } from '../helpers/gpu.ts';
import { poisonedAs, readAsF32, roundAs, uploadAs } from '../helpers/storage.ts';

const eng = await testEngine();
// Two f32 products and a sum per element (the GPU may fuse them): a few ulp of |x|.
const TOL = { f32: { atol: 2e-6, rtol: 1e-6 }, f16: { atol: 4e-3, rtol: 2e-3 } };

interface Case {
  heads: number;
  tokens: number;
  dim: number;
  maxPos: number;
  theta: number;
}
const CASES: Case[] = [
  { heads: 1, tokens: 1, dim: 2, maxPos: 4, theta: 10000 },
  { heads: 3, tokens: 7, dim: 32, maxPos: 16, theta: 10000 },
  { heads: 2, tokens: 257, dim: 64, maxPos: 64, theta: 10000 },
  { heads: 5, tokens: 33, dim: 10, maxPos: 40, theta: 100 },
  { heads: 1, tokens: 64, dim: 8, maxPos: 1000, theta: 1e4 },
];

/** The model's tables for random float positions (half-integers included: caption tokens sit at (G−1)/2). */
function tables(rng: Rng, c: Case): { cos: Float32Array; sin: Float32Array } {
  const pos = Float32Array.from({ length: c.tokens * 3 }, () => rng.int(2 * c.maxPos) / 2);
  return ropeTables(pos, c.dim, c.theta);
}

async function check(st: 'f32' | 'f16', c: Case, inPlace: boolean, seed: number): Promise<void> {
  const rng = new Rng(seed);
  const x = roundAs(st, rng.normals(c.heads * c.tokens * c.dim));
  const { cos, sin } = tables(rng, c);
  const tx = uploadAs(eng, st, x, [c.heads, c.tokens, c.dim], 'x');
  const tc = eng.upload(cos, [c.tokens, c.dim], 'cos');
  const ts = eng.upload(sin, [c.tokens, c.dim], 'sin');
  const out = inPlace ? tx : poisonedAs(eng, st, [c.heads, c.tokens, c.dim]);
  await rope(eng, tx, tc, ts, out);
  const name = `rope [${c.heads}, ${c.tokens}, ${c.dim}]${inPlace ? ' in place' : ''} ${st}`;
  assertClose(name, await readAsF32(eng, out), ropeCpu(x, cos, sin, c.dim), TOL[st]);
  [tx, tc, ts, out].forEach((t) => t.dispose());
}

for (const st of ['f32', 'f16'] as const) {
  describe.skipIf(!storageTypes(eng).includes(st))(`rope kernel (${st})`, () => {
    CASES.forEach((c, k) => {
      for (const inPlace of [false, true]) {
        it(`H=${c.heads} N=${c.tokens} D=${c.dim} theta=${c.theta}${inPlace ? ' in place' : ''}`, () =>
          check(st, c, inPlace, 17 * k + Number(inPlace)));
      }
    });
  });
}

describe('rope kernel: convention and arguments', () => {
  it('ropeCpu over ropeTables turns each pair by position · frequency', () => {
    // D = 2: one t pair at frequency θ^0 = 1, so position 1 turns (1, 0) to (cos 1, sin 1).
    const one = ropeTables(new Float32Array([1, 0, 0]), 2, 10000);
    assertClose('one pair', ropeCpu(new Float32Array([1, 0]), one.cos, one.sin, 2), [Math.cos(1), Math.sin(1)], {
      atol: 1e-7,
      rtol: 0,
    });
    // D = 8: pairs t, t, y, x (two t pairs: frequencies 1 and θ^(−1/2) = 0.1 for θ = 100); position (3, 0.5, 2).
    const t = ropeTables(new Float32Array([3, 0.5, 2]), 8, 100);
    const got = ropeCpu(new Float32Array([1, 0, 0, 1, 5, 6, 1, 1]), t.cos, t.sin, 8);
    const want = [
      Math.cos(3),
      Math.sin(3),
      -Math.sin(0.3),
      Math.cos(0.3),
      5 * Math.cos(0.5) - 6 * Math.sin(0.5),
      5 * Math.sin(0.5) + 6 * Math.cos(0.5),
      Math.cos(2) - Math.sin(2),
      Math.sin(2) + Math.cos(2),
    ];
    assertClose('axes', got, want, { atol: 1e-6, rtol: 0 });
  });

  it("is a rotation: the GPU keeps each pair's norm, every head turned alike", async () => {
    const x = new Float32Array(16).fill(1);
    const { cos, sin } = ropeTables(new Float32Array([100_000, 54_321.5, 7]), 8, 10000);
    const got = (await eng.read(
      await rope(eng, eng.upload(x, [2, 1, 8]), eng.upload(cos, [1, 8]), eng.upload(sin, [1, 8])),
    )) as Float32Array;
    const norms = [0, 2, 4, 6, 8, 10, 12, 14].map((j) => Math.hypot(got[j], got[j + 1]));
    assertClose('pair norms', norms, new Array(8).fill(Math.SQRT2), { atol: 1e-5, rtol: 0 });
    assertClose('heads alike', got.subarray(8), got.subarray(0, 8), { atol: 0, rtol: 0 });
  });

  it('refuses bad arguments with ShapeError', () => {
    const x = eng.upload(new Float32Array(2 * 5 * 8), [2, 5, 8], 'x');
    const cos = eng.upload(new Float32Array(40), [5, 8], 'cos');
    const sin = eng.upload(new Float32Array(40), [5, 8], 'sin');
    const refuse = (f: () => unknown, msg: RegExp) => {
      expect(f).toThrow(ShapeError);
      expect(f).toThrow(msg);
    };
    refuse(
      () => rope(eng, eng.tensor([10, 8]), cos, sin),
      /rope: x must be \[heads, tokens, head dim\], got \[10, 8\]/,
    );
    refuse(() => rope(eng, eng.tensor([2, 5, 7]), cos, sin), /rope: the head dim must be even and ≥ 2, got 7/);
    refuse(
      () => rope(eng, x, eng.upload(new Float32Array(32), [4, 8]), sin),
      /rope: cos must be f32 \[5, 8\] \(one row per token\), got f32 \[4, 8\]/,
    );
    refuse(() => rope(eng, x, cos, eng.upload(new Int32Array(40), [5, 8])), /rope: sin must be f32 \[5, 8\].*got i32/);
    refuse(
      () => rope(eng, x, cos, sin, eng.tensor([2, 5, 6])),
      /rope: out f32 \[2, 5, 6\] must match x f32 \[2, 5, 8\]/,
    );
    refuse(() => rope(eng, eng.tensor([1, 5, 8]), cos, sin, cos), /rope: out cannot be a table/);
    refuse(
      () => ropeCpu(new Float32Array(7), new Float32Array(6), new Float32Array(6), 6),
      /rope: 7 values are not \[heads, 1, 6\]/,
    );
    refuse(
      () => ropeCpu(new Float32Array(6), new Float32Array(6), new Float32Array(6), 3),
      /not \[tokens, 3\] with 3 even/,
    );
  });
});
