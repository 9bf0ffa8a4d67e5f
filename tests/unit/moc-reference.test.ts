import { describe, expect, it } from 'vitest';
import { mocRouteCpu } from '../../src/engine/kernels/moc-route.ts';
import { KIND_VIDEO, tokenChunks, tokenShots, type ChunkTable } from '../../src/model/layout.ts';
import {
  chunkDescriptors,
  mocAttentionReference,
  mocReference,
  routeReference,
  sparsityOf,
  type MocConfig,
} from '../../src/model/moc-reference.ts';
import { addRoutes, addScores, meanScore } from '../../src/viz/dag-layout.ts';
import { routingTrace } from '../../src/model/routing-trace.ts';
import { assertClose, assertEqualInts } from '../helpers/compare.ts';
import { CASES, duplicateChunkKeys, isCandidate, isMandatory, randomQkv } from '../helpers/moc-cases.ts';

const H = 2;
const D = 8;

/** Token-level mask of Ω_h(i), written directly from §3 (no chunk lists). */
function omegaMask(
  table: ChunkTable,
  routed: Int32Array,
  K: number,
  h: number,
  i: number,
  dense: boolean,
  causalText = false,
): Uint8Array {
  const N = table.n;
  const chunkOf = tokenChunks(table);
  const mask = new Uint8Array(N);
  const row = routed.subarray((h * N + i) * K, (h * N + i + 1) * K);
  for (let t = 0; t < N; t++) {
    const b = chunkOf[t];
    mask[t] = dense || isMandatory(table, chunkOf[i], b, causalText) || row.includes(b) ? 1 : 0;
  }
  return mask;
}

/** Plain masked softmax attention, float64. */
function plainAttention(
  q: Float32Array,
  k: Float32Array,
  v: Float32Array,
  N: number,
  maskOf: (h: number, i: number) => Uint8Array,
): Float32Array {
  const out = new Float32Array(H * N * D);
  for (let h = 0; h < H; h++) {
    for (let i = 0; i < N; i++) {
      const mask = maskOf(h, i);
      const s = new Float64Array(N).fill(-Infinity);
      for (let t = 0; t < N; t++) {
        if (!mask[t]) continue;
        s[t] = 0;
        for (let d = 0; d < D; d++) s[t] += q[(h * N + i) * D + d] * k[(h * N + t) * D + d];
        s[t] /= Math.sqrt(D);
      }
      const m = Math.max(...s);
      const w = s.map((x) => Math.exp(x - m));
      const z = w.reduce((a, b) => a + b, 0);
      for (let d = 0; d < D; d++) {
        let acc = 0;
        for (let t = 0; t < N; t++) acc += w[t] * v[(h * N + t) * D + d];
        out[(h * N + i) * D + d] = acc / z;
      }
    }
  }
  return out;
}

/** Routing scores of query i against chunk b, float64, from the descriptors. */
function score(q: Float32Array, desc: Float64Array, C: number, N: number, h: number, i: number, b: number): number {
  let s = 0;
  for (let d = 0; d < D; d++) s += q[(h * N + i) * D + d] * desc[(h * C + b) * D + d];
  return s;
}

describe('MoC CPU reference', () => {
  CASES.forEach((c, ci) => {
    const table = c.table;
    const N = table.n;
    const C = table.start.length;
    const chunkOf = tokenChunks(table);
    for (const causal of [true, false]) {
      for (const topK of [0, 1, 3, 40]) {
        const cfg: MocConfig = { topK, causal, mode: 'moc' };
        it(`${c.name}, causal ${causal}, k=${topK}: routing properties`, () => {
          const { q, k } = randomQkv(100 + ci, H, N, D);
          const desc = chunkDescriptors(k, { H, N, D }, table);
          const routed = routeReference(q, desc, { H, N, D }, table, cfg);
          expect(routed.length).toBe(H * N * topK);
          let edges = 0;
          let anyCandidate = false;
          for (let h = 0; h < H; h++) {
            for (let i = 0; i < N; i++) {
              const a = chunkOf[i];
              const row = [...routed.subarray((h * N + i) * topK, (h * N + i + 1) * topK)];
              const used = row.filter((r) => r >= 0);
              // -1 only as trailing padding
              expect(row.slice(used.length).every((r) => r === -1)).toBe(true);
              if (table.kind[a] !== KIND_VIDEO) {
                expect(used).toEqual([]); // text queries never route
                continue;
              }
              const cands: number[] = [];
              for (let b = 0; b < C; b++) if (isCandidate(table, a, b, causal)) cands.push(b);
              anyCandidate ||= cands.length > 0;
              expect(used.length).toBe(Math.min(topK, cands.length)); // k larger than candidates: all of them
              expect(new Set(used).size).toBe(used.length);
              for (const r of used) {
                expect(isMandatory(table, a, r)).toBe(false);
                expect(table.kind[r]).toBe(KIND_VIDEO);
                if (causal) expect(r).toBeLessThan(a); // DAG: edges point backwards
              }
              const s = used.map((r) => score(q, desc, C, N, h, i, r));
              for (let j = 1; j < s.length; j++) expect(s[j]).toBeLessThanOrEqual(s[j - 1]); // descending
              const worstKept = s.length ? s[s.length - 1] : Infinity;
              for (const b of cands)
                if (!used.includes(b)) expect(score(q, desc, C, N, h, i, b)).toBeLessThanOrEqual(worstKept);
              edges += used.length;
            }
          }
          expect(edges > 0).toBe(topK > 0 && anyCandidate);
          if (ci > 0) expect(anyCandidate).toBe(true); // only the 1-shot layout has nothing to route
          // The kernels' twin (running insertion top-k) agrees with the sorting reference.
          assertEqualInts('twin vs reference', mocRouteCpu(q, desc, { H, N, D }, table, { topK, causal }), routed);
        });
      }
      for (const causalText of [false, true]) {
        it(`${c.name}, causal ${causal}, causal text ${causalText}: attention = masked plain attention, sparsity = direct count`, () => {
          const { q, k, v } = randomQkv(200 + ci, H, N, D);
          const cfg: MocConfig = { topK: 2, causal, mode: 'moc', causalText };
          const res = mocReference(q, k, v, { H, N, D }, table, cfg);
          const want = plainAttention(q, k, v, N, (h, i) =>
            omegaMask(table, res.routed, cfg.topK, h, i, false, causalText),
          );
          assertClose('moc attention', res.out, want, { atol: 1e-6, rtol: 1e-6 });
          let visited = 0;
          for (let h = 0; h < H; h++) {
            let perHead = 0;
            for (let i = 0; i < N; i++)
              perHead += omegaMask(table, res.routed, cfg.topK, h, i, false, causalText).reduce((a, x) => a + x, 0);
            expect(res.sparsityPerHead[h]).toBeCloseTo(1 - perHead / (N * N), 12);
            visited += perHead;
          }
          expect(res.sparsity).toBeCloseTo(1 - visited / (H * N * N), 12);
          expect(res.sparsity).toBeGreaterThan(0);
        });
      }
    }
    it(`${c.name}: dense mode = plain softmax attention, sparsity 0, nothing routed`, () => {
      const { q, k, v } = randomQkv(300 + ci, H, N, D);
      const res = mocReference(q, k, v, { H, N, D }, table, { topK: 3, causal: true, mode: 'dense' });
      assertClose(
        'dense',
        res.out,
        plainAttention(q, k, v, N, () => new Uint8Array(N).fill(1)),
        { atol: 1e-6, rtol: 1e-6 },
      );
      expect(res.sparsity).toBe(0);
      expect(res.routed.every((r) => r === -1)).toBe(true);
    });
  });

  it('causal text and causal routing: no output of shot s moves when any later shot changes (and without causal text some do)', () => {
    const dims = { H, N: 0, D };
    for (const c of CASES.slice(1, 5)) {
      const table = c.table;
      const N = (dims.N = table.n);
      const shotOf = tokenShots(table);
      const lastShot = Math.max(...table.shot);
      for (let s = 0; s < lastShot; s++) {
        const first = shotOf.findIndex((x) => x > s); // later shots form a suffix of the stream
        expect(shotOf.subarray(first).every((x) => x > s)).toBe(true);
        const a = randomQkv(500 + s, H, N, D);
        const fresh = randomQkv(600 + s, H, N, D);
        const b = { q: a.q.slice(), k: a.k.slice(), v: a.v.slice() };
        for (const key of ['q', 'k', 'v'] as const)
          for (let h = 0; h < H; h++)
            b[key].set(fresh[key].subarray((h * N + first) * D, (h + 1) * N * D), (h * N + first) * D);
        const moved = (causalText: boolean): boolean => {
          const cfg: MocConfig = { topK: 2, causal: true, mode: 'moc', causalText };
          const ra = mocReference(a.q, a.k, a.v, dims, table, cfg);
          const rb = mocReference(b.q, b.k, b.v, dims, table, cfg);
          let any = false;
          for (let h = 0; h < H; h++) {
            for (let i = 0; i < first; i++) {
              for (let j = 0; j < 2; j++) expect(rb.routed[(h * N + i) * 2 + j]).toBe(ra.routed[(h * N + i) * 2 + j]); // routing is causal either way
              for (let d = 0; d < D; d++) any ||= ra.out[(h * N + i) * D + d] !== rb.out[(h * N + i) * D + d];
            }
          }
          return any;
        };
        expect(moved(true), `${c.name}: shots ≤ ${s} with causal text`).toBe(false);
        expect(moved(false), `${c.name}: shots ≤ ${s} without causal text`).toBe(true);
      }
    }
  });

  it('k = 0 attends to the mandatory chunks only', () => {
    const table = CASES[3].table;
    const N = table.n;
    const { q, k, v } = randomQkv(7, H, N, D);
    const res = mocReference(q, k, v, { H, N, D }, table, { topK: 0, causal: false, mode: 'moc' });
    const want = plainAttention(q, k, v, N, (h, i) => omegaMask(table, res.routed, 0, h, i, false));
    assertClose('k=0', res.out, want, { atol: 1e-6, rtol: 1e-6 });
    const chunkOf = tokenChunks(table);
    let mand = 0;
    for (let i = 0; i < N; i++) for (let t = 0; t < N; t++) mand += isMandatory(table, chunkOf[i], chunkOf[t]) ? 1 : 0;
    expect(res.sparsity).toBeCloseTo(1 - mand / (N * N), 12);
  });

  it('ties go to the lower chunk index (duplicate chunks)', () => {
    const table = CASES[4].table; // 5 shots, one frame per chunk
    const N = table.n;
    const { q, k } = randomQkv(11, H, N, D);
    const video = [...table.kind.keys()].filter((c) => table.kind[c] === KIND_VIDEO);
    const [lo, hi] = [video[0], video[2]]; // shot 0 and shot 1: candidates of later shots
    duplicateChunkKeys(k, table, H, D, lo, hi);
    const desc = chunkDescriptors(k, { H, N, D }, table);
    for (const topK of [1, 2, 8]) {
      const routed = routeReference(q, desc, { H, N, D }, table, { topK, causal: true, mode: 'moc' });
      let tiesSeen = 0;
      for (let q0 = 0; q0 < H * N; q0++) {
        const a = tokenChunks(table)[q0 % N];
        if (!isCandidate(table, a, lo, true) || !isCandidate(table, a, hi, true)) continue;
        const row = [...routed.subarray(q0 * topK, (q0 + 1) * topK)];
        const pLo = row.indexOf(lo);
        const pHi = row.indexOf(hi);
        if (pHi >= 0) {
          expect(pLo).toBeGreaterThanOrEqual(0); // hi kept ⇒ lo kept
          expect(pLo).toBeLessThan(pHi); // and ahead of it
          tiesSeen++;
        }
        if (pLo === topK - 1 && pHi < 0) tiesSeen++; // the tie straddled the cut: lo won
      }
      expect(tiesSeen).toBeGreaterThan(0);
      assertEqualInts(`twin k=${topK}`, mocRouteCpu(q, desc, { H, N, D }, table, { topK, causal: true }), routed);
    }
  });

  it('sparsityOf ignores duplicate and mandatory entries in a routed list', () => {
    const table = CASES[1].table;
    const N = table.n;
    const video = [...table.kind.keys()].filter((c) => table.kind[c] === KIND_VIDEO);
    const routed = new Int32Array(N * 3).fill(-1);
    const last = N - 1; // in the last shot; video[0] is in shot 0
    routed.set([video[0], video[0], video[video.length - 1]], last * 3);
    const a = sparsityOf(routed, 3, { H: 1, N, D }, table, 'moc');
    const once = new Int32Array(N * 3).fill(-1);
    once[last * 3] = video[0];
    expect(a.sparsity).toBe(sparsityOf(once, 3, { H: 1, N, D }, table, 'moc').sparsity);
    const { q, k, v } = randomQkv(5, 1, N, D);
    const o1 = mocAttentionReference(q, k, v, { H: 1, N, D }, table, routed, 3, 'moc');
    const o2 = mocAttentionReference(q, k, v, { H: 1, N, D }, table, once, 3, 'moc');
    assertClose('dedup', o1, o2, { atol: 0, rtol: 0 });
  });

  it('routing trace: counts match routed, never mandatory, mean scores are chunk means', () => {
    const table = CASES[3].table;
    const N = table.n;
    const C = table.start.length;
    const chunkOf = tokenChunks(table);
    const { q, k } = randomQkv(21, H, N, D);
    const desc = chunkDescriptors(k, { H, N, D }, table);
    const cfg: MocConfig = { topK: 2, causal: true, mode: 'moc' };
    const routed = routeReference(q, desc, { H, N, D }, table, cfg);
    const sp = sparsityOf(routed, 2, { H, N, D }, table, 'moc');
    const tr = routingTrace(q, desc, routed, 2, { H, N, D }, table);
    expect(tr.routes.count.reduce((s, x) => s + x, 0)).toBe(routed.filter((r) => r >= 0).length);
    for (let h = 0; h < H; h++) {
      for (let a = 0; a < C; a++) {
        const counts = new Float64Array(C);
        addRoutes(tr, h, a, counts);
        const scores = new Float64Array(C);
        addScores(tr, h, a, scores);
        for (let b = 0; b < C; b++) {
          const n = counts[b];
          let want = 0;
          for (let i = 0; i < N; i++)
            if (chunkOf[i] === a) for (let j = 0; j < 2; j++) want += Number(routed[(h * N + i) * 2 + j] === b);
          expect(n).toBe(want);
          if (n > 0) {
            expect(tr.mandatory[a * C + b]).toBe(0);
            expect(b).toBeLessThan(a);
          }
          let direct = 0;
          let m = 0;
          for (let i = 0; i < N; i++) {
            if (chunkOf[i] !== a) continue;
            direct += score(q, desc, C, N, h, i, b);
            m++;
          }
          expect(meanScore(tr, h, a, b)).toBeCloseTo(direct / m, 5);
          expect(scores[b]).toBe(meanScore(tr, h, a, b));
        }
      }
      expect(tr.sparsity[h]).toBeCloseTo(sp.perHead[h], 6);
    }
    for (let a = 0; a < C; a++) expect(tr.mandatory[a * C + a]).toBe(1);
    expect([...routingTrace(q, desc, routed, 2, { H, N, D }, table, 'dense').sparsity]).toEqual([0, 0]);
  });
});
