import { describe, expect, it } from 'vitest';
import { traceCounts, traceCountsCpu, traceScores, traceScoresCpu } from '../../src/engine/kernels/trace.ts';
import { Rng } from '../../src/engine/random.ts';
import { assertClose, assertEqualInts } from '../helpers/compare.ts';
import { testEngine } from '../helpers/gpu.ts';

/** A random contiguous chunk table over N tokens (lengths 1..maxLen) and a random permutation. */
function randomTable(rng: Rng, N: number, maxLen: number): { start: Int32Array; end: Int32Array; toStream: Int32Array } {
  const start: number[] = [];
  const end: number[] = [];
  for (let t = 0; t < N; ) {
    const len = Math.min(N - t, 1 + rng.int(maxLen));
    start.push(t);
    end.push(t + len);
    t += len;
  }
  const perm = start.map((_, i) => i);
  for (let i = perm.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [perm[i], perm[j]] = [perm[j], perm[i]];
  }
  return { start: Int32Array.from(start), end: Int32Array.from(end), toStream: Int32Array.from(perm) };
}

describe('routing-trace kernels', () => {
  for (const [H, N, K, maxLen, D] of [
    [1, 5, 1, 2, 4],
    [2, 37, 3, 7, 32],
    [3, 301, 4, 35, 64],
    [2, 2000, 2, 3, 16], // ~1000 chunks: a row of counters near the workgroup-memory limit
  ]) {
    it(`H=${H} N=${N} K=${K} chunks ≤ ${maxLen} tokens D=${D}: counts exact, scores within tolerance`, async () => {
      const eng = await testEngine();
      const rng = new Rng(H * 1000 + N);
      const tab = randomTable(rng, N, maxLen);
      const C = tab.start.length;
      const routed = Int32Array.from({ length: H * N * K }, () => (rng.next() < 0.2 ? -1 : rng.int(C)));
      const qMean = new Rng(1 + N).normals(H * C * D);
      const desc = new Rng(2 + N).normals(H * C * D);
      const up = (a: Int32Array, label: string) => eng.upload(a, [a.length], label);
      const [rt, st, en, ts] = [eng.upload(routed, [H, N, K], 'test.routed'), up(tab.start, 'test.start'), up(tab.end, 'test.end'), up(tab.toStream, 'test.to-stream')];
      const [qt, dt] = [eng.upload(qMean, [H, C, D], 'test.q-mean'), eng.upload(desc, [H, C, D], 'test.desc')];
      const counts = await traceCounts(eng, rt, st, en, ts);
      const scores = await traceScores(eng, qt, dt, ts);
      const want = traceCountsCpu(routed, H, N, K, tab.start, tab.end, tab.toStream);
      assertEqualInts('counts', await eng.read(counts), want);
      expect(want.reduce((a, b) => a + b, 0)).toBe(routed.filter((r) => r >= 0).length); // every routed slot counted once
      assertClose('scores', (await eng.read(scores)) as Float32Array, traceScoresCpu(qMean, desc, H, C, D, tab.toStream), { atol: 1e-5, rtol: 1e-5 });
      [rt, st, en, ts, qt, dt, counts, scores].forEach((t) => t.dispose());
    });
  }

  it('refuses mismatched shapes with one line', async () => {
    const eng = await testEngine();
    const q = eng.tensor([2, 3, 4]);
    const d = eng.tensor([2, 4, 4]);
    const s = eng.upload(new Int32Array(3), [3]);
    await expect(traceScores(eng, q, d, s)).rejects.toThrow(/^traceScores: qMean and desc must be f32 \[H, C, D\] of one shape/);
    [q, d, s].forEach((t) => t.dispose());
  });
});
