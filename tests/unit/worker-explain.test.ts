/** Teaching mode's explanation agrees with the MoC contract for the storyboard's layout. */
import { describe, expect, it } from 'vitest';
import { explainQuery } from '../../src/worker/explain.ts';
import { WorkerError } from '../../src/worker/errors.ts';
import type { ExplainRequest } from '../../src/worker/protocol.ts';

const base: ExplainRequest = {
  globalCaptionTokens: 4,
  shots: [{ captionTokens: 4, frames: 3 }, { captionTokens: 4, frames: 2 }, { captionTokens: 4, frames: 2 }],
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
    const best = r.chunks.filter((c) => c.candidate).sort((x, y) => y.score - x.score || x.index - y.index).slice(0, 2).map((c) => c.index);
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

  it('refuses a query outside the layout, naming it', () => {
    expect(() => explainQuery({ ...base, query: { shot: 5, frame: 0, patch: 0 } })).toThrow(WorkerError);
    expect(() => explainQuery({ ...base, query: { shot: 0, frame: 9, patch: 0 } })).toThrow(/frame 9 is outside shot 1/);
    expect(() => explainQuery({ ...base, query: { shot: 0, frame: 0, patch: 16 } })).toThrow(/patch 16/);
  });
});
