/**
 * moc-route vs its CPU twin and the model's reference: routed indices must be exactly equal.
 *
 * The GPU scores in f32 and the references in f64, so scores closer than f32 rounding could be
 * ordered differently by a correct kernel. The data are therefore chosen so that every score is
 * exact in both: q and descriptors are multiples of 1/8 in [-2, 2] (products are multiples of
 * 1/64, sums of a few hundred of them fit f32's 24 bits), and in the end-to-end test the keys are
 * multiples of 1/8 over video chunks of 32 or 64 tokens, so their means are exact too. Scores
 * are then either exactly equal (many ties, which must go to the lower chunk index on both
 * sides) or at least 1/64 apart.
 */
import { describe, expect, it } from 'vitest';
import { chunkMean } from '../../src/engine/kernels/chunk-mean.ts';
import { MAX_TOP_K, mocRoute, mocRouteCpu } from '../../src/engine/kernels/moc-route.ts';
import { Rng } from '../../src/engine/random.ts';
import { buildChunkTable, tokenChunks, type ChunkTable } from '../../src/model/layout.ts';
import { chunkDescriptors, routeReference } from '../../src/model/moc-reference.ts';
import { assertEqualInts } from '../helpers/compare.ts';
import { storageTypes, testEngine } from '../helpers/gpu.ts';
import { CASES, duplicateChunkKeys, singleShotTable } from '../helpers/moc-cases.ts';
import { uploadAs } from '../helpers/storage.ts';

/** n values, multiples of 1/8 in [-2, 2]: exact in f16, f32 and f64. */
function eighths(rng: Rng, n: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = (rng.int(33) - 16) / 8;
  return out;
}

/** Rows of `routed` [H·N, K] where two adjacent routed chunks tie exactly (for coverage). */
function exactTies(
  q: Float32Array,
  desc: Float32Array,
  routed: Int32Array,
  H: number,
  D: number,
  table: ChunkTable,
  K: number,
): number {
  const N = table.n;
  const C = table.start.length;
  let ties = 0;
  const score = (h: number, i: number, b: number): number => {
    let x = 0;
    for (let d = 0; d < D; d++) x += q[(h * N + i) * D + d] * desc[(h * C + b) * D + d];
    return x;
  };
  for (let r = 0; r < H * N; r++) {
    const [h, i] = [Math.floor(r / N), r % N];
    for (let j = 0; j + 1 < K && routed[r * K + j + 1] >= 0; j++) {
      if (score(h, i, routed[r * K + j]) === score(h, i, routed[r * K + j + 1])) ties++;
    }
  }
  return ties;
}

const BIG = { name: 'single-shot layout, 40 frames (3 descriptor tiles)', table: singleShotTable(40, 9) };

describe('moc-route kernel', () => {
  [...CASES, BIG].forEach((c, ci) => {
    for (const D of [7, 16, 260]) {
      for (const causal of [true, false]) {
        it(`${c.name}, D=${D}, causal ${causal}, k = 0, 1, 3, 16`, async () => {
          const eng = await testEngine();
          const { table } = c;
          const [H, N, C] = [2, table.n, table.start.length];
          for (const st of storageTypes(eng)) {
            const rng = new Rng(1000 + ci * 10 + D);
            const q = eighths(rng, H * N * D);
            const desc = eighths(rng, H * C * D);
            const tq = uploadAs(eng, st, q, [H, N, D], 'q');
            const td = eng.upload(desc, [H, C, D], 'desc');
            const cols = {
              start: eng.upload(table.start, [C]),
              kind: eng.upload(table.kind, [C]),
              shot: eng.upload(table.shot, [C]),
            };
            for (const topK of [0, 1, 3, MAX_TOP_K]) {
              const out = eng.tensor([H, N, topK], 'i32', 'routed');
              eng.poison(out);
              await mocRoute(eng, tq, td, cols, { topK, causal }, out);
              const got = await eng.read(out);
              const twin = mocRouteCpu(q, desc, { H, N, D }, table, { topK, causal });
              assertEqualInts(`routed ${st} k=${topK}`, got, twin);
              assertEqualInts(
                `reference k=${topK}`,
                twin,
                routeReference(q, desc, { H, N, D }, table, { topK, causal, mode: 'moc' }),
              );
              if (ci > 0 && topK > 0) expect(twin.some((r) => r >= 0)).toBe(true);
              out.dispose();
            }
            [tq, td, cols.start, cols.kind, cols.shot].forEach((t) => t.dispose());
          }
        });
      }
    }
  });

  it('queryStart: rows from it on as without it, earlier rows untouched (GPU) or −1 (twin)', async () => {
    const eng = await testEngine();
    const { table } = CASES[4];
    const [H, N, C, D, K] = [2, table.n, table.start.length, 16, 3];
    const rng = new Rng(77);
    const q = eighths(rng, H * N * D);
    const desc = eighths(rng, H * C * D);
    const q0 = table.start[Math.floor(C / 2)]; // a chunk start mid-sequence
    const full = mocRouteCpu(q, desc, { H, N, D }, table, { topK: K, causal: true });
    const part = mocRouteCpu(q, desc, { H, N, D }, table, { topK: K, causal: true, queryStart: q0 });
    const tq = eng.upload(q, [H, N, D], 'q');
    const td = eng.upload(desc, [H, C, D], 'desc');
    const cols = {
      start: eng.upload(table.start, [C]),
      kind: eng.upload(table.kind, [C]),
      shot: eng.upload(table.shot, [C]),
    };
    const out = eng.upload(new Int32Array(H * N * K).fill(-7), [H, N, K], 'routed');
    await mocRoute(eng, tq, td, cols, { topK: K, causal: true, queryStart: q0 }, out);
    const got = (await eng.read(out)) as Int32Array;
    for (let h = 0; h < H; h++) {
      for (let i = 0; i < N; i++) {
        const row = (h * N + i) * K;
        const want = i < q0 ? [-7, -7, -7] : [...full.subarray(row, row + K)];
        expect([...got.subarray(row, row + K)], `h ${h} i ${i}`).toEqual(want);
        expect([...part.subarray(row, row + K)]).toEqual(i < q0 ? [-1, -1, -1] : want);
      }
    }
    expect(full.subarray(q0 * K).some((r) => r >= 0)).toBe(true);
    [tq, td, cols.start, cols.kind, cols.shot, out].forEach((t) => t.dispose());
  });

  it('ties: quantised scores tie often, and the kernel breaks them like the twin', async () => {
    const eng = await testEngine();
    const table = BIG.table;
    const [H, N, D, C] = [2, table.n, 2, table.start.length]; // D = 2: few distinct scores
    const rng = new Rng(8);
    const q = eighths(rng, H * N * D);
    const desc = eighths(rng, H * C * D);
    const cols = {
      start: eng.upload(table.start, [C]),
      kind: eng.upload(table.kind, [C]),
      shot: eng.upload(table.shot, [C]),
    };
    const out = await mocRoute(eng, eng.upload(q, [H, N, D]), eng.upload(desc, [H, C, D]), cols, {
      topK: 8,
      causal: true,
    });
    const twin = mocRouteCpu(q, desc, { H, N, D }, table, { topK: 8, causal: true });
    assertEqualInts('ties', await eng.read(out), twin);
    expect(exactTies(q, desc, twin, H, D, table, 8)).toBeGreaterThan(100);
  });

  it('end to end (chunk-mean → moc-route) equals the model reference, duplicated chunks tie', async () => {
    const eng = await testEngine();
    for (const chunkFrames of [1, 2]) {
      const table = buildChunkTable({
        globalCaptionTokens: 5,
        shots: [3, 2, 4, 1, 3].map((frames) => ({ captionTokens: 5, frames })),
        tokensPerFrame: 32,
        chunkFrames,
      });
      const [H, N, D, C] = [2, table.n, 16, table.start.length];
      const rng = new Rng(60 + chunkFrames);
      const q = eighths(rng, H * N * D);
      const k = eighths(rng, H * N * D);
      const firstOfShot = (s: number): number => table.chunks.findIndex((c) => c.kind === 'video' && c.shot === s);
      const [lo, hi] = [firstOfShot(0), firstOfShot(2)]; // both chunkFrames·32 tokens long
      duplicateChunkKeys(k, table, H, D, lo, hi);
      const cols = {
        start: eng.upload(table.start, [C]),
        kind: eng.upload(table.kind, [C]),
        shot: eng.upload(table.shot, [C]),
      };
      const tk = eng.upload(k, [H, N, D]);
      const desc = await chunkMean(eng, tk, cols.start, eng.upload(table.end, [C]));
      for (const topK of [1, 4]) {
        const out = await mocRoute(eng, eng.upload(q, [H, N, D]), desc, cols, { topK, causal: true });
        const ref = routeReference(q, chunkDescriptors(k, { H, N, D }, table), { H, N, D }, table, {
          topK,
          causal: true,
          mode: 'moc',
        });
        assertEqualInts(`end to end cf=${chunkFrames} k=${topK}`, await eng.read(out), ref);
        const chunkOf = tokenChunks(table);
        let seen = 0;
        for (let r = 0; r < H * N; r++) {
          const row = [...ref.subarray(r * topK, (r + 1) * topK)];
          if (chunkOf[r % N] <= hi || table.shot[chunkOf[r % N]] === table.shot[hi]) continue;
          if (row.includes(hi)) expect(row.indexOf(lo)).toBe(row.indexOf(hi) - 1);
          if (row.includes(lo)) seen++;
        }
        expect(seen).toBeGreaterThan(0);
      }
    }
  });

  it('refuses top_k above the register budget and mismatched descriptors', async () => {
    const eng = await testEngine();
    const table = CASES[0].table;
    const [H, N, D, C] = [1, table.n, 4, table.start.length];
    const tq = eng.upload(new Float32Array(H * N * D), [H, N, D]);
    const cols = {
      start: eng.upload(table.start, [C]),
      kind: eng.upload(table.kind, [C]),
      shot: eng.upload(table.shot, [C]),
    };
    await expect(
      mocRoute(eng, tq, eng.upload(new Float32Array(H * C * D), [H, C, D]), cols, { topK: 17, causal: true }),
    ).rejects.toThrow(/0\.\.16/);
    await expect(
      mocRoute(eng, tq, eng.upload(new Float32Array(H * C * 3), [H, C, 3]), cols, { topK: 2, causal: true }),
    ).rejects.toThrow(/mocRoute\.desc/);
  });
});
