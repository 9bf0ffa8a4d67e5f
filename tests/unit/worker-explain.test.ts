/**
 * Teaching mode's explanation agrees with the MoC contract for the storyboard's layout: the
 * seeded example (the fallback before a video exists), and the shared explanation on given q, k.
 * The network's path (real q and k from the fixture model): tests/model/explain-network.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { buildChunkTable } from '../../src/model/layout.ts';
import { explainQuery, explainTokens } from '../../src/worker/explain.ts';
import { WorkerError } from '../../src/worker/errors.ts';
import type { ExplainRequest } from '../../src/worker/protocol.ts';

const base: ExplainRequest = {
  globalCaptionTokens: 4,
  shots: [
    { captionTokens: 4, frames: 3 },
    { captionTokens: 4, frames: 2 },
    { captionTokens: 4, frames: 2 },
  ],
  tokensPerFrame: 4,
  chunkFrames: 1,
  topK: 2,
  causal: true,
  query: { shot: 2, frame: 1, patch: 3 },
  head: 0,
  seed: 5,
};

describe('explainQuery', () => {
  it('finds the query token and its chunk in stream order', () => {
    const r = explainQuery(base);
    // chunks: G, cap0, f0 f1 f2, cap1, f0 f1, cap2, f0 f1 (0…10) → the query is shot 2’s second frame
    expect(r.queryChunk).toBe(10);
    expect(r.queryToken).toBe(4 + 4 + 12 + 4 + 8 + 4 + 4 + 3);
    expect(r.totalTokens).toBe(4 * 4 + 7 * 4);
  });

  it('marks every caption and the own shot mandatory, masks later chunks, routes the top k', () => {
    const r = explainQuery({ ...base, query: { shot: 1, frame: 0, patch: 0 } });
    const a = r.queryChunk; // shot 1, frame 0 → chunk 6
    expect(a).toBe(6);
    const by = (f: (c: (typeof r.chunks)[number]) => boolean) => r.chunks.filter(f).map((c) => c.index);
    expect(by((c) => c.mandatory)).toEqual([0, 1, 5, 6, 7, 8]);
    expect(by((c) => c.candidate)).toEqual([2, 3, 4]);
    expect(by((c) => c.causalMasked)).toEqual([9, 10]);
    const routed = r.chunks.filter((c) => c.routed);
    expect(routed).toHaveLength(2);
    const best = r.chunks
      .filter((c) => c.candidate)
      .sort((x, y) => y.score - x.score || x.index - y.index)
      .slice(0, 2)
      .map((c) => c.index);
    expect(routed.map((c) => c.index).sort()).toEqual(best.sort());
    expect(r.keyTokens).toBe([0, 1, 5, 6, 7, 8, ...best].reduce((n, c) => n + r.chunks[c].tokens, 0));
  });

  it('without causality later shots are candidates', () => {
    const r = explainQuery({ ...base, causal: false, query: { shot: 0, frame: 0, patch: 0 } });
    expect(r.chunks.filter((c) => c.candidate).map((c) => c.shot)).toEqual([1, 1, 2, 2]);
    expect(r.chunks.some((c) => c.causalMasked)).toBe(false);
  });

  it('is deterministic for a seed', () => {
    expect(explainQuery(base).chunks.map((c) => c.score)).toEqual(explainQuery(base).chunks.map((c) => c.score));
  });

  it('says it is a seeded example, not the network', () => {
    const r = explainQuery(base);
    expect(r.origin).toBe('example');
    expect(r.network).toBeUndefined();
    expect(r.note).toBeUndefined();
    expect(r.source).toMatch(/^A seeded example on the CPU .*not the network's numbers/);
    expect([r.heads, r.headDim]).toEqual([2, 16]);
  });

  it('refuses a head outside the example', () => {
    expect(() => explainQuery({ ...base, head: 2 })).toThrow(/head 2 is outside 0…1/);
  });

  it('refuses a query outside the layout, naming it', () => {
    expect(() => explainQuery({ ...base, query: { shot: 5, frame: 0, patch: 0 } })).toThrow(WorkerError);
    expect(() => explainQuery({ ...base, query: { shot: 0, frame: 9, patch: 0 } })).toThrow(
      /frame 9 is outside shot 1/,
    );
    expect(() => explainQuery({ ...base, query: { shot: 0, frame: 0, patch: 16 } })).toThrow(/patch 16/);
  });
});

describe('explainTokens (shared by the seeded example and the network)', () => {
  // G, cap0, s0 f0, s0 f1, cap1, s1 f0, s1 f1 — 2 tokens per frame, 1 per caption; H = 2, D = 2
  const table = buildChunkTable({
    globalCaptionTokens: 1,
    shots: [
      { captionTokens: 1, frames: 2 },
      { captionTokens: 1, frames: 2 },
    ],
    tokensPerFrame: 2,
    chunkFrames: 1,
  });
  const H = 2;
  const D = 2;
  const N = table.n;
  const k = new Float32Array(H * N * D);
  const q = new Float32Array(H * N * D);
  // head 1: keys of chunk b are (b, 1) and (b, 3): descriptor (b, 2) for frames, (b, 1) for captions; head 0 left at zero
  table.chunks.forEach((c, b) => {
    for (let t = c.start; t < c.end; t++) k.set([b, 1 + 2 * (t - c.start)], (N + t) * D);
  });
  const token = table.start[6] + 1; // shot 1, frame 1, second patch
  q.set([-1, 1], (N + token) * D);
  const input = { q, k, dims: { H, N, D }, table, token, head: 1, topK: 1, causal: true };
  const about = { origin: 'network' as const, source: 'test', network: { model: 'm', layers: 1, layer: 0, t: 0.5 } };

  it('scores are q·mean(k) per chunk; the top-k of the candidates is routed', () => {
    const r = explainTokens(input, about);
    expect(r.queryChunk).toBe(6);
    expect(r.chunks.map((c) => c.score)).toEqual(table.chunks.map((c, b) => -b + (c.kind === 'video' ? 2 : 1)));
    expect(r.chunks.filter((c) => c.candidate).map((c) => c.index)).toEqual([2, 3]);
    expect(r.chunks.filter((c) => c.routed).map((c) => c.index)).toEqual([2]); // higher score: the earlier frame
    expect(r.chunks[3].rank).toBe(1);
    expect(r.queryHead).toEqual([-1, 1]);
    expect(r.keyTokens).toBe(1 + 1 + 1 + 2 + 2 + 2); // captions, own shot, the routed frame
    expect(r.network).toEqual(about.network);
    expect(r.note).toBeUndefined();
  });

  it("shows the network's routed set as given, with a note where the float64 ranking differs", () => {
    const r = explainTokens({ ...input, routed: Int32Array.from([3]) }, about);
    expect(r.chunks.filter((c) => c.routed).map((c) => c.index)).toEqual([3]);
    expect(r.note).toMatch(/route to chunk 3, while these float64 scores rank chunk 2 into the top 1/);
    expect(explainTokens({ ...input, routed: Int32Array.from([2]) }, about).note).toBeUndefined();
  });
});
