import { describe, expect, it } from 'vitest';
import { compactRows, decodeRoutes, traceCounts, traceCountsCpu } from '../../src/engine/kernels/trace.ts';
import { Rng } from '../../src/engine/random.ts';
import { assertEqualInts } from '../helpers/compare.ts';
import { testEngine } from '../helpers/gpu.ts';

/** A random contiguous chunk table over N tokens (lengths 1..maxLen) and a random permutation. */
function randomTable(
  rng: Rng,
  N: number,
  maxLen: number,
): { start: Int32Array; end: Int32Array; toStream: Int32Array } {
  const start: number[] = [];
  const end: number[] = [];
  for (let t = 0; t < N;) {
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

describe('routing-trace counts kernel', () => {
  for (const [H, N, K, maxLen, pRoute] of [
    [1, 5, 1, 2, 0.8],
    [2, 37, 3, 7, 0.8],
    [3, 301, 4, 35, 0.8],
    [2, 301, 4, 35, 0.01], // most rows empty
    [2, 2000, 2, 3, 0.8], // ~1000 chunks: a row of counters near the workgroup-memory limit
  ]) {
    it(`H=${H} N=${N} K=${K} chunks ≤ ${maxLen} tokens, ${pRoute * 100}% of slots routed: rows exact`, async () => {
      const eng = await testEngine();
      const rng = new Rng(H * 1000 + N + Math.round(pRoute * 100));
      const tab = randomTable(rng, N, maxLen);
      const C = tab.start.length;
      const routed = Int32Array.from({ length: H * N * K }, () => (rng.next() < pRoute ? rng.int(C) : -1));
      const up = (a: Int32Array, label: string) => eng.upload(a, [a.length], label);
      const [rt, st, en, ts] = [
        eng.upload(routed, [H, N, K], 'test.routed'),
        up(tab.start, 'test.start'),
        up(tab.end, 'test.end'),
        up(tab.toStream, 'test.to-stream'),
      ];
      // a pooled buffer comes back dirty: the counter must be cleared and no other word trusted
      const dirty = eng.tensor([1 + H * C * (C + 2)], 'u32', 'test.dirty');
      eng.poison(dirty, 0xdead);
      dirty.dispose();
      const out = await traceCounts(eng, rt, st, en, ts);
      expect(out.size).toBe(1 + H * C * (C + 2));
      const words = (await eng.read(out)) as Uint32Array;
      const got = decodeRoutes(words.subarray(0, 1 + words[0]), H, C);
      const want = traceCountsCpu(routed, H, N, K, tab.start, tab.end, tab.toStream);
      assertEqualInts('start', got.start, want.start);
      assertEqualInts('to', got.to, want.to);
      assertEqualInts('count', got.count, want.count);
      let rows = 0;
      for (let r = 0; r < H * C; r++) if (want.start[r + 1] > want.start[r]) rows++;
      expect(words[0]).toBe(2 * rows + want.to.length); // a header of two words per row with routes
      expect(want.count.reduce((a, b) => a + b, 0)).toBe(routed.filter((r) => r >= 0).length); // every routed slot counted once
      // rows are in stream order with increasing key chunks; the twin agrees with a dense count
      const dense = new Uint32Array(H * C * C);
      for (let h = 0; h < H; h++) {
        for (let a = 0; a < C; a++) {
          for (let i = tab.start[a]; i < tab.end[a]; i++) {
            for (let j = 0; j < K; j++) {
              const r = routed[(h * N + i) * K + j];
              if (r >= 0) dense[(h * C + tab.toStream[a]) * C + tab.toStream[r]]++;
            }
          }
        }
      }
      for (let r = 0; r < H * C; r++) {
        for (let e = want.start[r]; e < want.start[r + 1]; e++) {
          if (e > want.start[r]) expect(want.to[e]).toBeGreaterThan(want.to[e - 1]);
          expect(want.count[e]).toBe(dense[r * C + want.to[e]]);
        }
      }
      [rt, st, en, ts, out].forEach((t) => t.dispose());
    });
  }

  it('decodes rows in any order and refuses malformed words', () => {
    // H = 1, C = 3: row 2 → {0: 5}, row 0 → {1: 1, 2: 7}, written in that order
    const words = Uint32Array.from([7, 2, 1, (0 << 16) | 5, 0, 2, (1 << 16) | 1, (2 << 16) | 7]);
    const r = decodeRoutes(words, 1, 3);
    expect([...r.start]).toEqual([0, 2, 2, 3]);
    expect([...r.to]).toEqual([1, 2, 0]);
    expect([...r.count]).toEqual([1, 7, 5]);
    expect(() => decodeRoutes(words.subarray(0, 5), 1, 3)).toThrow(/^decodeRoutes: 5 words, the counter says 8$/);
    expect(() => decodeRoutes(Uint32Array.from([4, 2, 1, 5, 2]), 1, 3)).toThrow(/bad row header/); // row 2 twice
    expect(() => decodeRoutes(Uint32Array.from([3, 3, 1, 5]), 1, 3)).toThrow(/bad row header \(3, 1\)/); // row out of range
    expect(decodeRoutes(Uint32Array.from([0]), 2, 3).start).toEqual(new Uint32Array(7));
  });

  it('counts are 16-bit: the CPU twin refuses a larger one', () => {
    expect(() => compactRows(Uint32Array.from([0, 65_536]), 1, 2)).toThrow(
      /^route count 65536 \(row 0, chunk 1\) exceeds the 16-bit trace format's 65535$/,
    );
    expect(compactRows(Uint32Array.from([0, 65_535]), 1, 2).count[0]).toBe(65_535);
  });

  it('refuses routing that is not i32 [H, N, K] with one line', async () => {
    const eng = await testEngine();
    const r = eng.tensor([2, 3]);
    const s = eng.upload(new Int32Array(3), [3]);
    await expect(traceCounts(eng, r, s, s, s)).rejects.toThrow(
      /^traceCounts: routed must be i32 \[H, N, K\], got f32 \[2, 3\]$/,
    );
    [r, s].forEach((t) => t.dispose());
  });
});
