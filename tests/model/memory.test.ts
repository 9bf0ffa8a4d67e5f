/**
 * The GPU memory budget (src/model/memory.ts): what is counted, refusals that say what to change,
 * the check at the start of Generator.generate; and 20 generations in a row with the tiny
 * fixture model that do not grow the engine's pooled GPU bytes.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import type { GenerateRequest } from '../../src/model/api.ts';
import { Generator, RequestError } from '../../src/model/generate.ts';
import { estimateMemory, memoryProblem, type MemoryPlan } from '../../src/model/memory.ts';
import { testEngine } from '../helpers/gpu.ts';
import { loadFixtureModel } from './fixture.ts';

// a moc-base-like model: 64×64 frames, 8×8 patches (G = 8, 64 tokens a frame), dim 192, 3 heads
const cfg = { dim: 192, heads: 3, headDim: 64, depth: 8, mlpHidden: 768, textLen: 16, grid: 8, imageSize: 64 };
const GiB = 2 ** 30;
const roomy = { maxBufferSize: 4 * GiB, maxStorageBufferBindingSize: 2 * GiB };
const plan = (frames: number[], mode: 'moc' | 'dense' = 'moc', chunkFrames = 1, topK = 4): MemoryPlan => ({
  frames,
  attention: { mode, topK, chunkFrames, causal: true },
  weightBytes: 10_000_000,
  traced: true,
});

describe('memory budget (pure)', () => {
  it('counts tokens, chunks and the buffers', () => {
    const e = estimateMemory(cfg, plan([8, 8]), roomy);
    expect(e.tokens).toBe(3 * 16 + 16 * 64);
    expect(e.chunks).toBe(3 + 16);
    expect(e.design).toBe('grouped');
    expect(e.largest.label).toMatch(/MLP hidden|q, k, v|grouped partial/);
    expect(e.total).toBe(10_000_000 + e.buffers.reduce((a, b) => a + b.bytes * b.count, 0));
    const dense = estimateMemory(cfg, plan([8, 8], 'dense'), roomy).buffers;
    expect(dense.some((b) => /grouped|routed/.test(b.label))).toBe(false);
    expect(dense.find((b) => /trace/.test(b.label))?.count).toBe(2 * cfg.depth); // traced layers keep scores and counts
    // the grouped scratch is only counted where it fits one binding (else the union design runs)
    expect(
      estimateMemory(cfg, plan([64, 64, 64, 64]), {
        maxBufferSize: 32 * 2 ** 20,
        maxStorageBufferBindingSize: 32 * 2 ** 20,
      }).design,
    ).toBe('union');
  });

  it('a storyboard that fits is not refused', () => {
    expect(memoryProblem(cfg, plan([8, 8, 8]), roomy)).toBeNull();
  });

  it('too many frames for the per-buffer limit: says which buffer and how many frames fit', () => {
    const small = { maxBufferSize: 256 * 2 ** 20, maxStorageBufferBindingSize: 128 * 2 ** 20 };
    const msg = memoryProblem(cfg, plan(Array(32).fill(64)), small)!;
    expect(msg).toMatch(
      /^2048 frames in 32 shots \(\d+ tokens, \d+ chunks, moc attention\) need a [\d.]+ MiB buffer \(.+\), more than this GPU's maxStorageBufferBindingSize of 128\.0 MiB; try fewer frames \(about \d+ of 2048 fit\)/,
    );
    const fit = Number(/about (\d+) of/.exec(msg)![1]);
    const frames = Array(32).fill(Math.floor(fit / 32));
    expect(memoryProblem(cfg, plan(frames), small)).toBeNull();
    expect(msg).not.toContain('\n');
  });

  it('a total over the budget suggests MoC for dense, larger chunks for traces', () => {
    const budget = { ...roomy, budgetBytes: 100 * 2 ** 20 };
    const dense = memoryProblem(cfg, plan(Array(16).fill(16), 'dense'), budget)!;
    expect(dense).toMatch(/need about [\d.]+ MiB of GPU memory, more than the 100\.0 MiB allowed; try fewer frames/);
    expect(dense).toMatch(/MoC attention instead of dense/);
    // many tiny chunks: the traces [H, C, C] dominate
    const traces = memoryProblem({ ...cfg, depth: 64 }, plan(Array(32).fill(64), 'moc', 1), {
      ...roomy,
      budgetBytes: 400 * 2 ** 20,
    })!;
    expect(traces).toMatch(/larger chunks \(chunk frames 1 → 2\)/);
  });
});

describe('memory budget in Generator (tiny fixture model)', () => {
  let gen: Generator;
  beforeAll(async () => {
    gen = Generator.create(await testEngine(), await loadFixtureModel());
  });
  const request = (frames: number[], over: Partial<GenerateRequest> = {}): GenerateRequest => ({
    storyboard: {
      version: 1,
      globalCaption: 'Character 1 is a red star.',
      shots: frames.map((f, i) => ({ caption: 'Character 1 bounces in the meadow.', frames: f, seed: i })),
    },
    steps: 1,
    guidance: 3,
    attention: { mode: 'moc', topK: 2, chunkFrames: 1, causal: true },
    traceEvery: 1,
    ...over,
  });

  it('refuses a storyboard whose buffers exceed the adapter limits before allocating', async () => {
    const limits = gen.eng.adapter.limits;
    const saved = { ...limits };
    const before = gen.eng.pool.stats();
    try {
      Object.assign(limits, { maxStorageBufferBindingSize: 256 * 1024, maxBufferSize: 256 * 1024 });
      await expect(gen.generate(request([64, 64, 64, 64]))).rejects.toBeInstanceOf(RequestError);
      await expect(gen.generate(request([64, 64, 64, 64]))).rejects.toThrow(
        /more than this GPU's maxStorageBufferBindingSize of 256\.0 KiB; try fewer frames \(about \d+ of 256 fit\)/,
      );
    } finally {
      Object.assign(limits, saved);
    }
    expect(gen.eng.pool.stats()).toEqual(before);
  });

  it('20 generations in a row do not grow the pooled GPU bytes', { timeout: 180_000 }, async () => {
    const seen: number[] = [];
    const peaks: number[] = [];
    const ms: number[] = [];
    for (let i = 0; i < 20; i++) {
      const t0 = performance.now();
      const r = await gen.generate(request(i % 2 ? [1] : [1, 1], { guidance: 1, traceEvery: 0 }));
      ms.push(performance.now() - t0);
      expect(r.shots).toHaveLength(i % 2 ? 1 : 2);
      const s = gen.eng.pool.stats();
      seen.push(s.liveBytes + s.idleBytes);
      peaks.push(s.peakBytes);
    }
    // after a few warm-up runs of each layout the pool has all it needs: no growth
    expect(
      seen.slice(4).every((b) => b === seen[3]),
      `pooled bytes ${seen.join(', ')}; ms ${ms.map((t) => t.toFixed(0)).join(', ')}`,
    ).toBe(true);
    expect(gen.eng.pool.stats().liveBytes).toBeLessThanOrEqual(seen[3]);
    // the peak (what timing.json reports) covers every state seen and stops growing too
    expect(peaks.every((p, i) => p >= seen[i])).toBe(true);
    expect(
      peaks.slice(4).every((p) => p === peaks[3]),
      `peaks ${peaks.join(', ')}`,
    ).toBe(true);
  });
});
