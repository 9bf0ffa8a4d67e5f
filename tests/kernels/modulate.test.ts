import { describe, expect, it } from 'vitest';
import { ShapeError } from '../../src/engine/errors.ts';
import { gatedResidual, gatedResidualCpu, modulate, modulateCpu } from '../../src/engine/kernels/modulate.ts';
import { Rng } from '../../src/engine/random.ts';
import { assertClose } from '../helpers/compare.ts';
import { storageTypes, testEngine } from '../helpers/gpu.ts';
import { poisonedAs, readAsF32, roundAs, uploadAs } from '../helpers/storage.ts';

const eng = await testEngine();
const TOL = { f32: { atol: 1e-6, rtol: 1e-6 }, f16: { atol: 2e-3, rtol: 2e-3 } };
const K = 6; // chunks of the adaLN output: shift, scale, gate for attention and for the MLP

/** Columns chunk·dim … (chunk+1)·dim − 1 of a [S, K·dim] table, as a [S, dim] array. */
function chunkOf(table: Float32Array, segs: number, dim: number, chunk: number): Float32Array {
  const out = new Float32Array(segs * dim);
  for (let s = 0; s < segs; s++)
    out.set(table.subarray(s * K * dim + chunk * dim, s * K * dim + (chunk + 1) * dim), s * dim);
  return out;
}

function inputs(st: 'f32' | 'f16', rows: number, dim: number, segs: number, seed: number) {
  const rng = new Rng(seed);
  const x = roundAs(st, rng.normals(rows * dim));
  const res = roundAs(st, rng.normals(rows * dim));
  const table = roundAs(st, rng.normals(segs * K * dim, 0.5)); // [S, K·dim]
  const seg = Int32Array.from({ length: rows }, () => rng.int(segs));
  return { x, res, table, seg };
}

for (const st of ['f32', 'f16'] as const) {
  describe.skipIf(!storageTypes(eng).includes(st))(`modulate kernels (${st})`, () => {
    for (const [rows, dim, segs] of [
      [1, 1, 1],
      [7, 7, 3],
      [257, 64, 4],
      [33, 257, 2],
    ]) {
      const shape = `rows=${rows} dim=${dim} shots=${segs}`;
      it(`modulate from [S, dim] tables, ${shape}`, async () => {
        const { x, table, seg } = inputs(st, rows, dim, segs, rows + dim);
        const shift = chunkOf(table, segs, dim, 0);
        const scale = chunkOf(table, segs, dim, 1);
        const ts = [
          uploadAs(eng, st, x, [rows, dim]),
          uploadAs(eng, st, shift, [segs, dim]),
          uploadAs(eng, st, scale, [segs, dim]),
          eng.upload(seg, [rows]),
        ];
        const out = poisonedAs(eng, st, [rows, dim]);
        await modulate(eng, ts[0], ts[1], ts[2], ts[3], out);
        assertClose(
          `modulate ${shape} ${st}`,
          await readAsF32(eng, out),
          modulateCpu(x, shift, scale, seg, dim),
          TOL[st],
        );
        [...ts, out].forEach((t) => t.dispose());
      });

      it(`modulate from chunks of the adaLN output [S, 6·dim], ${shape}`, async () => {
        const { x, table, seg } = inputs(st, rows, dim, segs, rows * dim + 1);
        const [tx, tt, tseg] = [
          uploadAs(eng, st, x, [rows, dim]),
          uploadAs(eng, st, table, [segs, K * dim]),
          eng.upload(seg, [rows]),
        ];
        const out = poisonedAs(eng, st, [rows, dim]);
        await modulate(eng, tx, { table: tt, chunk: 3 }, { table: tt, chunk: 4 }, tseg, out);
        const want = modulateCpu(x, chunkOf(table, segs, dim, 3), chunkOf(table, segs, dim, 4), seg, dim);
        assertClose(`modulate chunks ${shape} ${st}`, await readAsF32(eng, out), want, TOL[st]);
        [tx, tt, tseg, out].forEach((t) => t.dispose());
      });

      for (const inPlace of [false, true]) {
        it(`gated residual${inPlace ? ' in place' : ''}, ${shape}`, async () => {
          const { x, res, table, seg } = inputs(st, rows, dim, segs, rows * 3 + dim);
          const [tx, tres, tt, tseg] = [
            uploadAs(eng, st, x, [rows, dim]),
            uploadAs(eng, st, res, [rows, dim]),
            uploadAs(eng, st, table, [segs, K * dim]),
            eng.upload(seg, [rows]),
          ];
          const out = inPlace ? tres : poisonedAs(eng, st, [rows, dim]);
          await gatedResidual(eng, tres, { table: tt, chunk: 5 }, tx, tseg, out);
          const want = gatedResidualCpu(res, chunkOf(table, segs, dim, 5), x, seg, dim);
          assertClose(`gated ${shape} ${st}`, await readAsF32(eng, out), want, TOL[st]);
          [tx, tres, tt, tseg, out].forEach((t) => t.dispose());
        });
      }
    }
  });
}

describe('modulate kernels: contract and arguments', () => {
  it('CPU twins match hand-computed values', () => {
    const seg = new Int32Array([1, 0]);
    const got = modulateCpu(
      new Float32Array([1, 2, 3, 4]),
      new Float32Array([0, 0, 10, 20]),
      new Float32Array([1, 1, 0, -1]),
      seg,
      2,
    );
    expect([...got]).toEqual([11, 20, 6, 8]);
    const gated = gatedResidualCpu(
      new Float32Array([1, 1, 1, 1]),
      new Float32Array([2, 3, 0, 1]),
      new Float32Array([1, 2, 3, 4]),
      seg,
      2,
    );
    expect([...gated]).toEqual([1, 3, 7, 13]);
  });

  it('writes NaN to the rows whose segment is out of range', async () => {
    const x = eng.upload(new Float32Array(12).fill(1), [4, 3]);
    const table = eng.upload(new Float32Array(6).fill(0.5), [2, 3]);
    const seg = eng.upload(new Int32Array([0, 2, -1, 1]), [4]);
    const got = (await eng.read(await modulate(eng, x, table, table, seg))) as Float32Array;
    expect([...got].map((v) => (Number.isNaN(v) ? 'nan' : v))).toEqual([
      2,
      2,
      2,
      'nan',
      'nan',
      'nan',
      'nan',
      'nan',
      'nan',
      2,
      2,
      2,
    ]);
    expect(() =>
      modulateCpu(new Float32Array(3), new Float32Array(3), new Float32Array(3), new Int32Array([1]), 3),
    ).toThrow(/seg\[0\] = 1 is not a shot in \[0, 1\)/);
  });

  it('refuses bad arguments with ShapeError', () => {
    const x = eng.upload(new Float32Array(14), [2, 7], 'x');
    const t7 = eng.upload(new Float32Array(21), [3, 7], 't7');
    const t2 = eng.upload(new Float32Array(14), [2, 7], 't2');
    const t42 = eng.upload(new Float32Array(126), [3, 42], 't42');
    const seg = eng.upload(new Int32Array(2), [2], 'seg');
    const refuse = (f: () => unknown, msg: RegExp) => {
      expect(f).toThrow(ShapeError);
      expect(f).toThrow(msg);
    };
    refuse(() => modulate(eng, x, t7, t2, seg), /modulate: shift and scale disagree on the number of shots \(3 vs 2\)/);
    refuse(() => modulate(eng, x, t42, t7, seg), /modulate: shift \[3, 42\] must be \[shots, 7\]/);
    refuse(() => modulate(eng, x, { table: t42, chunk: 6 }, t7, seg), /modulate: shift chunk 6 is not in \[0, 6\)/);
    refuse(
      () => modulate(eng, x, { table: t7, chunk: 0 }, { table: eng.tensor([3, 10]), chunk: 0 }, seg),
      /scale table width 10 is not a multiple of dim 7/,
    );
    refuse(
      () => modulate(eng, x, t7, t7, eng.upload(new Float32Array(2), [2])),
      /seg must be i32 \[2\] \(one shot index per token\), got f32 \[2\]/,
    );
    refuse(() => modulate(eng, x, t7, t7, seg, x), /modulate: out shares a buffer with an input it reads/);
    refuse(() => modulate(eng, eng.tensor([14]), t7, t7, seg), /x must be \[tokens, dim\], got \[14\]/);
    refuse(() => gatedResidual(eng, t2, t7, x, seg, x), /only res may be out/);
    refuse(() => gatedResidual(eng, t7, t7, x, seg), /gatedResidual: res f32 \[3, 7\] must match x f32 \[2, 7\]/);
    refuse(
      () => modulateCpu(new Float32Array(13), new Float32Array(7), new Float32Array(7), new Int32Array(2), 7),
      /x has 13 values, want 2 tokens × 7/,
    );
  });
});
