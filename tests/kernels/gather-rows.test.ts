import { describe, expect, it } from 'vitest';
import { ShapeError } from '../../src/engine/errors.ts';
import { gatherRows, gatherRowsCpu } from '../../src/engine/kernels/gather-rows.ts';
import { Rng } from '../../src/engine/random.ts';
import { assertClose, assertEqualInts } from '../helpers/compare.ts';
import { storageTypes, testEngine } from '../helpers/gpu.ts';
import { poisonedAs, readAsF32, roundAs, uploadAs } from '../helpers/storage.ts';

const eng = await testEngine();
const EXACT = { atol: 0, rtol: 0 };

/** The DiT's head split of q: row n·3H + h of qkv [N·3H, D] goes to row h·N + n of [H, N, D]. */
function splitMap(H: number, N: number): Int32Array {
  const m = new Int32Array(H * N);
  for (let h = 0; h < H; h++) for (let n = 0; n < N; n++) m[h * N + n] = n * 3 * H + h;
  return m;
}

for (const st of ['f32', 'f16'] as const) {
  describe.skipIf(!storageTypes(eng).includes(st))(`gatherRows kernel (${st})`, () => {
    const cases: Array<[string, number, number, (rng: Rng, srcRows: number) => Int32Array]> = [
      ['random rows, repeats', 37, 5, (rng, r) => Int32Array.from({ length: 53 }, () => rng.int(r))],
      ['head split H=3 N=41 D=16', 3 * 3 * 41, 16, () => splitMap(3, 41)],
      ['one row', 1, 1, () => new Int32Array([0])],
    ];
    cases.forEach(([name, srcRows, width, map], k) => {
      it(name, async () => {
        const rng = new Rng(31 + k);
        const src = roundAs(st, rng.normals(srcRows * width));
        const idx = map(rng, srcRows);
        const ts = uploadAs(eng, st, src, [srcRows, width], 'src');
        const ti = eng.upload(idx, [idx.length], 'idx');
        const out = poisonedAs(eng, st, [idx.length, width]);
        await gatherRows(eng, ts, ti, { out });
        assertClose(`${name} ${st}`, await readAsF32(eng, out), gatherRowsCpu(src, idx, width), EXACT);
        [ts, ti, out].forEach((t) => t.dispose());
      });
    });
  });
}

describe('gatherRows: bit-exactness, bad indices, arguments', () => {
  it('moves f32 bits unchanged (−0 and NaN included) into the requested shape', async () => {
    const src = new Float32Array([1, -0, Number.NaN, 3.5, -2, 1e-40]);
    const out = await gatherRows(eng, eng.upload(src, [3, 2]), eng.upload(new Int32Array([2, 0, 1, 2]), [4]), {
      shape: [2, 2, 2],
    });
    expect(out.shape).toEqual([2, 2, 2]);
    const bits = new Uint32Array(((await eng.read(out)) as Float32Array).slice().buffer);
    assertEqualInts('bits', bits, new Uint32Array(gatherRowsCpu(src, new Int32Array([2, 0, 1, 2]), 2).buffer));
  });

  it('writes NaN rows for indices out of range (the CPU twin refuses them)', async () => {
    const src = eng.upload(new Float32Array([1, 2, 3, 4]), [2, 2]);
    const got = (await eng.read(
      await gatherRows(eng, src, eng.upload(new Int32Array([1, -1, 2]), [3])),
    )) as Float32Array;
    expect(Array.from(got.subarray(0, 2))).toEqual([3, 4]);
    expect(Array.from(got.subarray(2)).every(Number.isNaN)).toBe(true);
    expect(() => gatherRowsCpu(new Float32Array(4), new Int32Array([2]), 2)).toThrow(
      /gatherRows: idx\[0\] = 2 is not a row in \[0, 2\)/,
    );
  });

  it('refuses bad arguments with ShapeError', async () => {
    const src = eng.upload(new Float32Array(12), [4, 3], 'src');
    const idx = eng.upload(new Int32Array(2), [2], 'idx');
    const refuse = async (p: Promise<unknown>, msg: RegExp) => {
      await expect(p).rejects.toThrow(ShapeError);
      await expect(p).rejects.toThrow(msg);
    };
    await refuse(
      gatherRows(eng, eng.tensor([12]), idx),
      /gatherRows: src must be f32 or f16 \[rows, width\], got f32 \[12\]/,
    );
    await refuse(gatherRows(eng, src, eng.upload(new Float32Array(2), [2])), /gatherRows: idx must be i32/);
    await refuse(gatherRows(eng, src, idx, { shape: [7] }), /gatherRows: out f32 \[7\] must hold 2 rows of 3 f32/);
    await refuse(
      gatherRows(eng, src, idx, { out: eng.tensor([2, 3], 'i32') }),
      /gatherRows: out i32 \[2, 3\] must hold 2 rows of 3 f32/,
    );
    const square = eng.tensor([2, 3], 'f32', 'square');
    await refuse(gatherRows(eng, square, idx, { out: square }), /gatherRows: out shares a buffer with an input/);
    expect(() => gatherRowsCpu(new Float32Array(5), new Int32Array(1), 2)).toThrow(/5 values are not rows of 2/);
  });
});
