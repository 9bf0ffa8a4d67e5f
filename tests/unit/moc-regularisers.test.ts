import { describe, expect, it } from 'vitest';
import { Rng } from '../../src/engine/random.ts';
import { KIND_VIDEO, tokenChunks } from '../../src/model/layout.ts';
import { chunkDescriptors, regulariseRouting, routeReference } from '../../src/model/moc-reference.ts';
import { CASES, isCandidate, randomQkv } from '../helpers/moc-cases.ts';

const H = 2;
const D = 8;
const table = CASES[4].table; // 5 shots, one frame per chunk
const N = table.n;
const C = table.start.length;
const chunkOf = tokenChunks(table);

function routedFor(topK: number, causal: boolean): Int32Array {
  const { q, k } = randomQkv(3, H, N, D);
  return routeReference(q, chunkDescriptors(k, { H, N, D }, table), { H, N, D }, table, { topK, causal, mode: 'moc' });
}

describe('routing regularisers (context drop-off / drop-in)', () => {
  it('is the identity with dropMax 0 and λ 0', () => {
    const routed = routedFor(3, true);
    const r = regulariseRouting(routed, 3, { H, N }, table, true, { dropMax: 0, dropInRate: 0, seed: 1 });
    expect(r.width).toBe(3);
    expect([...r.routed]).toEqual([...routed]);
  });

  for (const causal of [true, false]) {
    it(`keeps a subset of the selection and adds only unselected candidates (causal ${causal})`, () => {
      const K = 3;
      const routed = routedFor(K, causal);
      const r = regulariseRouting(routed, K, { H, N }, table, causal, { dropMax: 1, dropInRate: 2, seed: 9 });
      let dropped = 0;
      let added = 0;
      for (let q = 0; q < H * N; q++) {
        const a = chunkOf[q % N];
        const sel = [...routed.subarray(q * K, (q + 1) * K)].filter((x) => x >= 0);
        const row = [...r.routed.subarray(q * r.width, (q + 1) * r.width)];
        const used = row.filter((x) => x >= 0);
        expect(row.slice(used.length).every((x) => x === -1)).toBe(true);
        expect(new Set(used).size).toBe(used.length);
        if (table.kind[a] !== KIND_VIDEO) {
          expect(used).toEqual([]);
          continue;
        }
        const kept = used.filter((x) => sel.includes(x));
        const extra = used.filter((x) => !sel.includes(x));
        expect(used.slice(0, kept.length)).toEqual(kept); // kept first, in slot order
        expect(kept).toEqual(sel.filter((x) => kept.includes(x)));
        for (const b of extra) expect(isCandidate(table, a, b, causal)).toBe(true);
        dropped += sel.length - kept.length;
        added += extra.length;
      }
      expect(dropped).toBeGreaterThan(0);
      expect(added).toBeGreaterThan(0);
      expect(r.width).toBeGreaterThan(K);
    });
  }

  it('is deterministic in the seed and changes with it', () => {
    const routed = routedFor(2, true);
    const opts = { dropMax: 0.9, dropInRate: 1, seed: 42 };
    const a = regulariseRouting(routed, 2, { H, N }, table, true, opts);
    const b = regulariseRouting(routed, 2, { H, N }, table, true, opts);
    const c = regulariseRouting(routed, 2, { H, N }, table, true, { ...opts, seed: 43 });
    expect([...a.routed]).toEqual([...b.routed]);
    expect([...a.routed]).not.toEqual([...c.routed]);
  });

  it('consumes the RNG exactly in the documented order', () => {
    // Replays the documented draws for every query with a bare Rng and compares row by row.
    const K = 3;
    const causal = true;
    const routed = routedFor(K, causal);
    const opts = { dropMax: 0.7, dropInRate: 1.5, seed: 1234 };
    const r = regulariseRouting(routed, K, { H, N }, table, causal, opts);
    const rng = new Rng(opts.seed);
    for (let q = 0; q < H * N; q++) {
      const a = chunkOf[q % N];
      const row = [...r.routed.subarray(q * r.width, (q + 1) * r.width)].filter((x) => x >= 0);
      if (table.kind[a] !== KIND_VIDEO) continue; // draws nothing
      const sel = [...routed.subarray(q * K, (q + 1) * K)].filter((x) => x >= 0);
      const u = rng.next();
      const drop = Math.floor(u * opts.dropMax * sel.length);
      const kept = sel.slice();
      for (let n = 0; n < drop; n++) kept.splice(Math.floor(rng.next() * kept.length), 1);
      let m = 0;
      for (let p = rng.next(); p > Math.exp(-opts.dropInRate); p *= rng.next()) m++; // Knuth: m+1 draws
      const pool = [...Array(C).keys()].filter((b) => isCandidate(table, a, b, causal) && !sel.includes(b));
      const add = Math.min(m, pool.length);
      for (let n = 0; n < add; n++) kept.push(pool.splice(Math.floor(rng.next() * pool.length), 1)[0]);
      expect(row, `query ${q}`).toEqual(kept);
    }
  });
});
