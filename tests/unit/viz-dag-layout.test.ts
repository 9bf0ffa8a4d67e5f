/** The routing DAG's pure layout: positions on the timeline, edges by query counts, score profiles. */
import { describe, expect, it } from 'vitest';
import { Rng } from '../../src/engine/random.ts';
import type { StepTrace } from '../../src/model/api.ts';
import { buildChunkTable } from '../../src/model/layout.ts';
import { chunkDescriptors, routeReference } from '../../src/model/moc-reference.ts';
import { routingTrace } from '../../src/model/routing-trace.ts';
import {
  CAPTION_Y,
  SHOT_GAP,
  edgesOf,
  headOverview,
  frameUnit,
  hitTest,
  layoutDag,
  mandatoryEdges,
  routedEdges,
  scoreProfile,
  traceAt,
} from '../../src/viz/dag-layout.ts';

// global caption (3 tokens), shot 0: caption 2 + 3 frames, shot 1: caption 2 + 2 frames; 4 tokens a frame.
const table = buildChunkTable({
  globalCaptionTokens: 3,
  shots: [
    { captionTokens: 2, frames: 3 },
    { captionTokens: 2, frames: 2 },
  ],
  tokensPerFrame: 4,
  chunkFrames: 1,
});
// chunks: 0 global, 1 cap0, 2-4 frames of shot 0, 5 cap1, 6-7 frames of shot 1

function makeTrace(step: number, topK = 1, causal = true): StepTrace {
  const H = 2;
  const D = 4;
  const N = table.n;
  const rng = new Rng(7);
  const q = rng.normals(H * N * D);
  const k = rng.normals(H * N * D);
  const dims = { H, N, D };
  const desc = chunkDescriptors(k, dims, table);
  const routed = routeReference(q, desc, dims, table, { topK, causal, mode: 'moc' });
  const t = routingTrace(q, desc, routed, topK, dims, table);
  return { step, chunks: table, layers: [t, t] };
}

describe('layoutDag', () => {
  it('puts frames on the time axis, shots apart, captions above', () => {
    const L = layoutDag(table);
    expect(frameUnit(table)).toBe(4);
    expect(L.nodes.map((n) => n.index)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    const v = L.nodes.filter((n) => n.kind === 'video');
    expect(v.map((n) => n.x)).toEqual([0, 1, 2, 3 + SHOT_GAP, 4 + SHOT_GAP]);
    expect(v.every((n) => n.w === 1 && n.y === 0)).toBe(true);
    expect(v[4].frames).toEqual([1, 2]);
    expect(L.shots).toEqual([
      { shot: 0, x0: 0, x1: 3 },
      { shot: 1, x0: 4, x1: 6 },
    ]);
    expect(L.nodes[1]).toMatchObject({ kind: 'text', x: 0, y: CAPTION_Y });
    expect(L.nodes[5]).toMatchObject({ kind: 'text', x: 4, y: CAPTION_Y });
    expect(L.nodes[0].x).toBeLessThan(0); // global caption left of the timeline
    expect(L.bounds.x0).toBe(L.nodes[0].x);
    expect(L.bounds.x1).toBe(6);
  });

  it('groups chunkFrames frames into one wider chunk', () => {
    const t2 = buildChunkTable({
      globalCaptionTokens: 1,
      shots: [{ captionTokens: 1, frames: 5 }],
      tokensPerFrame: 4,
      chunkFrames: 2,
    });
    const L = layoutDag(t2, 4);
    expect(L.nodes.filter((n) => n.kind === 'video').map((n) => [n.x, n.w])).toEqual([
      [0, 2],
      [2, 2],
      [4, 1],
    ]);
  });

  it('hit-tests nodes', () => {
    const L = layoutDag(table);
    expect(hitTest(L, 0.5, 0.5)).toBe(2);
    expect(hitTest(L, 4.5, 0.5)).toBe(6);
    expect(hitTest(L, 3.5, 0.5)).toBeNull(); // the gap between shots
    expect(hitTest(L, 0.5, CAPTION_Y + 0.1)).toBe(1);
  });
});

describe('edges', () => {
  it('counts routed queries per chunk pair; with causality every edge points back', () => {
    const tr = makeTrace(0);
    const edges = routedEdges(tr, { layer: -1, head: -1 });
    expect(edges.length).toBeGreaterThan(0);
    for (const e of edges) {
      expect(e.to).toBeLessThan(e.from);
      expect(table.kind[e.from]).toBe(1);
      expect(table.kind[e.to]).toBe(1);
      expect(table.shot[e.to]).not.toBe(table.shot[e.from]);
    }
    // shot 1's frames route to shot 0's frames with top-1: each query routes exactly once per head and layer
    const from6 = edges.filter((e) => e.from === 6);
    expect(from6.reduce((n, e) => n + e.count, 0)).toBe(4 * 2 * 2);
    expect(from6.reduce((n, e) => n + e.share, 0)).toBeCloseTo(1);
    expect(Math.max(...edges.map((e) => e.weight))).toBe(1);
    // shot 0 has nothing earlier outside itself: no edges from it
    expect(edges.some((e) => e.from <= 4)).toBe(false);
  });

  it('filters one layer and one head', () => {
    const tr = makeTrace(0);
    const one = routedEdges(tr, { layer: 0, head: 1 });
    expect(one.filter((e) => e.from === 7).reduce((n, e) => n + e.count, 0)).toBe(4);
  });

  it('colours each edge by the head that routed most of it', () => {
    const tr = makeTrace(0);
    const all = routedEdges(tr, { layer: -1, head: -1 });
    const per = [0, 1].map((h) => routedEdges(tr, { layer: -1, head: h }));
    for (const e of all) {
      const counts = per.map((es) => es.find((x) => x.from === e.from && x.to === e.to)?.count ?? 0);
      expect(e.head).toBe(counts[1] > counts[0] ? 1 : 0);
    }
    expect(routedEdges(tr, { layer: 0, head: 1 }).every((e) => e.head === 1)).toBe(true);
  });

  it('overviews layers × heads: sparsity, and where a chunk routes most in each', () => {
    const tr = makeTrace(0);
    const cells = headOverview(tr, 6);
    expect(cells.map((c) => [c.layer, c.head])).toEqual([
      [0, 0],
      [0, 1],
      [1, 0],
      [1, 1],
    ]);
    for (const c of cells) {
      expect(c.sparsity).toBe(tr.layers[c.layer].sparsity[c.head]);
      const top = routedEdges(tr, { layer: c.layer, head: c.head })
        .filter((e) => e.from === 6)
        .sort((a, b) => b.count - a.count || a.to - b.to)[0];
      expect(c.top).toBe(top.to);
      expect(c.topShare).toBeCloseTo(top.share);
    }
    expect(headOverview(tr, null).every((c) => c.top === null && c.topShare === 0)).toBe(true);
    expect(headOverview(tr, 1).every((c) => c.top === null)).toBe(true); // a caption routes nowhere
  });

  it('without causality edges may point forward', () => {
    const edges = routedEdges(makeTrace(0, 2, false), { layer: -1, head: -1 });
    expect(edges.some((e) => e.to > e.from)).toBe(true);
  });

  it('lists mandatory links of video chunks: every caption and the own shot', () => {
    const m = mandatoryEdges(makeTrace(0));
    expect(
      m
        .filter((e) => e.from === 6)
        .map((e) => e.to)
        .sort(),
    ).toEqual([0, 1, 5, 7]);
    expect(m.some((e) => e.from === 0)).toBe(false);
  });

  it('splits edges of a chunk into outgoing and incoming', () => {
    const edges = routedEdges(makeTrace(0), { layer: -1, head: -1 });
    const { outgoing, incoming } = edgesOf(edges, 2);
    expect(outgoing).toEqual([]);
    expect(incoming.every((e) => e.to === 2)).toBe(true);
  });
});

describe('scoreProfile', () => {
  it('marks roles, ranks candidates and places the cuts', () => {
    const tr = makeTrace(0, 1, true);
    const p = scoreProfile(tr, 6, { layer: -1, head: -1 }, 1, true);
    expect(p.bars.map((b) => b.role)).toEqual([
      'mandatory',
      'mandatory',
      'candidate',
      'candidate',
      'candidate',
      'mandatory',
      'self',
      'mandatory',
    ]);
    expect(p.causalCut).toBe(6);
    const cands = p.bars.filter((b) => b.role === 'candidate').sort((a, b) => a.rank! - b.rank!);
    expect(cands[0].score).toBeGreaterThanOrEqual(cands[1].score);
    expect(p.topKCut).toBeLessThan(cands[0].score);
    expect(p.topKCut).toBeGreaterThan(cands[1].score);
    expect(p.bars.filter((b) => b.role !== 'candidate').every((b) => b.share === 0)).toBe(true);
  });

  it('masks later chunks by causality and has no cuts for a caption', () => {
    const tr = makeTrace(0, 1, true);
    const p = scoreProfile(tr, 2, { layer: -1, head: -1 }, 1, true);
    expect(p.bars[6].role).toBe('causal-masked');
    expect(p.topKCut).toBeNull(); // no candidates before shot 0
    const t = scoreProfile(tr, 0, { layer: -1, head: -1 }, 1, true);
    expect(t.bars.every((b) => b.role === 'text-query')).toBe(true);
    expect(t.causalCut).toBeNull();
  });

  it('picks traces by step', () => {
    const a = makeTrace(0);
    const b = makeTrace(5);
    expect(traceAt([a, b], -1)).toBe(b);
    expect(traceAt([a, b], 0)).toBe(a);
    expect(traceAt([a, b], 3)).toBeNull();
    expect(traceAt([], -1)).toBeNull();
  });
});
