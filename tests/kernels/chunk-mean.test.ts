import { describe, expect, it } from 'vitest';
import { chunkMean, chunkMeanCpu } from '../../src/engine/kernels/chunk-mean.ts';
import { Rng } from '../../src/engine/random.ts';
import { KIND_VIDEO } from '../../src/model/layout.ts';
import { assertClose } from '../helpers/compare.ts';
import { testEngine, storageTypes } from '../helpers/gpu.ts';
import { CASES, duplicateChunkKeys } from '../helpers/moc-cases.ts';
import { roundAs, uploadAs } from '../helpers/storage.ts';

describe('chunk-mean kernel', () => {
  CASES.forEach((c, ci) => {
    for (const [H, D] of [
      [1, 1],
      [2, 7],
      [3, 65],
    ]) {
      it(`${c.name}, H=${H}, D=${D}`, async () => {
        const eng = await testEngine();
        const { table } = c;
        const N = table.n;
        const C = table.start.length;
        for (const st of storageTypes(eng)) {
          const x = new Rng(ci * 100 + D).normals(H * N * D);
          const tx = uploadAs(eng, st, x, [H, N, D], 'x');
          const ts = eng.upload(table.start, [C], 'start');
          const te = eng.upload(table.end, [C], 'end');
          const out = eng.tensor([H, C, D], 'f32', 'desc');
          eng.poison(out);
          await chunkMean(eng, tx, ts, te, out);
          const want = chunkMeanCpu(roundAs(st, x), { H, N, D }, table.start, table.end);
          assertClose(`chunk-mean ${st}`, await eng.read(out), want, { atol: 1e-5, rtol: 1e-5 });
          [tx, ts, te, out].forEach((t) => t.dispose());
        }
      });
    }
  });

  it('gives bitwise-equal descriptors to chunks with equal keys', async () => {
    const eng = await testEngine();
    const table = CASES[4].table;
    const [H, N, D] = [2, table.n, 16];
    const C = table.start.length;
    const video = [...table.kind.keys()].filter((c) => table.kind[c] === KIND_VIDEO);
    const x = new Rng(77).normals(H * N * D);
    duplicateChunkKeys(x, table, H, D, video[0], video[3]);
    const tx = eng.upload(x, [H, N, D]);
    const out = await chunkMean(eng, tx, eng.upload(table.start, [C]), eng.upload(table.end, [C]));
    const got = (await eng.read(out)) as Float32Array;
    for (let h = 0; h < H; h++) {
      const a = got.subarray((h * C + video[0]) * D, (h * C + video[0] + 1) * D);
      const b = got.subarray((h * C + video[3]) * D, (h * C + video[3] + 1) * D);
      expect([...b]).toEqual([...a]);
      expect(a.some((v) => v !== 0)).toBe(true);
    }
  });

  it('refuses mismatched chunk columns and outputs', async () => {
    const eng = await testEngine();
    const x = eng.upload(new Float32Array(2 * 10 * 4), [2, 10, 4]);
    const s = eng.upload(new Int32Array([0, 5]), [2]);
    const e = eng.upload(new Int32Array([5]), [1]);
    await expect(chunkMean(eng, x, s, e)).rejects.toThrow(/equal length/);
    const e2 = eng.upload(new Int32Array([5, 10]), [2]);
    await expect(chunkMean(eng, x, s, e2, eng.tensor([2, 2, 3]))).rejects.toThrow(/out must be f32 \[2, 2, 4\]/);
    await expect(chunkMean(eng, x.view([80]), s, e2)).rejects.toThrow(/expected \[H, N, D\]/);
  });
});
