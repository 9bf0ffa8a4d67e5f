import { beforeAll, describe, expect, it } from 'vitest';
import type { Engine } from '../../src/engine/engine.ts';
import type { GenerateProgress, GenerateRequest } from '../../src/model/api.ts';
import { MocDiT } from '../../src/model/dit.ts';
import { routedToStream, toStreamOrder } from './stream-order.ts';
import { chunkMeanCpu } from '../../src/engine/kernels/chunk-mean.ts';
import { meanScore } from '../../src/viz/dag-layout.ts';
import { mocReference } from '../../src/model/moc-reference.ts';
import { routingTrace } from '../../src/model/routing-trace.ts';
import { Generator, framesToRgba } from '../../src/model/generate.ts';
import { sample, timesteps } from '../../src/model/sampler.ts';
import { assertClose, assertEqualInts } from '../helpers/compare.ts';
import { testEngine } from '../helpers/gpu.ts';
import { loadFixture, loadFixtureModel, loadRouteViews, type Fixture } from './fixture.ts';

const TOL = { atol: 2e-4, rtol: 1e-3 };

// One file for every GPU model test: pipelines compile once per file (SwiftShader compiles slowly).
describe('MocDiT forward matches the PyTorch reference (fixtures)', () => {
  let eng: Engine;
  let dit: MocDiT;
  let fx: Fixture;
  beforeAll(async () => {
    eng = await testEngine();
    fx = loadFixture();
    dit = MocDiT.create(eng, await loadFixtureModel());
  });

  const run = async (mode: 'moc' | 'dense' | 'shot', capture?: Map<string, Float32Array | Int32Array>) => {
    const { meta } = fx;
    const cfg = dit.config;
    const T = meta.frames.reduce((a, b) => a + b, 0);
    const x = eng.upload(fx.get('x_t'), [T, 3, cfg.imageSize, cfg.imageSize], 'test.x');
    const text = dit.textEmbedding(fx.ints('text'));
    const res = await dit.forward(x, fx.get('t_shot'), text, meta.frames, meta.chunk_frames, {
      mode,
      topK: meta.top_k,
      causal: meta.causal,
      inspect: capture ? async (name, t) => void capture.set(name, (await eng.read(t)) as Float32Array) : undefined,
    });
    const v = (await eng.read(res.velocity)) as Float32Array;
    res.velocity.dispose();
    x.dispose();
    return v;
  };

  /** A traced moc forward of `m` on frames x (the fixture's other inputs): every inspected tensor, the result and the velocity. */
  const tracedMoc = async (m: MocDiT, xData: Float32Array) => {
    const { meta } = fx;
    const T = meta.frames.reduce((a, b) => a + b, 0);
    const cap = new Map<string, Float32Array | Int32Array>();
    const x = eng.upload(xData, [T, 3, m.config.imageSize, m.config.imageSize], 'test.x');
    const res = await m.forward(x, fx.get('t_shot'), m.textEmbedding(fx.ints('text')), meta.frames, meta.chunk_frames, {
      mode: 'moc',
      topK: meta.top_k,
      causal: meta.causal,
      trace: true,
      inspect: async (name, t) => void cap.set(name, (await eng.read(t)) as Float32Array),
    });
    const v = (await eng.read(res.velocity)) as Float32Array;
    res.velocity.dispose();
    x.dispose();
    return { cap, res, v };
  };

  it('moc: every layer, routing exact, velocity', async () => {
    const cap = new Map<string, Float32Array | Int32Array>();
    const v = await run('moc', cap);
    const seq = dit.sequence(fx.meta.frames, fx.meta.chunk_frames);
    for (const s of ['q', 'k', 'v', 'o'])
      assertClose(`blocks.0.attn.${s}`, cap.get(`blocks.0.attn.${s}`)!, fx.get(`moc.blocks.0.attn.${s}`), TOL);
    for (let i = 0; i < dit.config.depth; i++) {
      assertEqualInts(
        `blocks.${i}.routed`,
        routedToStream(cap.get(`blocks.${i}.routed`) as Int32Array, seq.toStream),
        fx.ints(`moc.blocks.${i}.routed`),
      );
      assertClose(`blocks.${i}.text`, cap.get(`blocks.${i}.text`)!, fx.get(`moc.blocks.${i}.text`), TOL);
      assertClose(`blocks.${i}.video`, cap.get(`blocks.${i}.video`)!, fx.get(`moc.blocks.${i}.video`), TOL);
    }
    assertClose('velocity.moc', v, fx.get('velocity.moc'), TOL);
  });

  it("traces (read back after the forward pass) equal routingTrace on the layer's q, k and routing", async () => {
    const { meta } = fx;
    const cfg = dit.config;
    const seq = dit.sequence(meta.frames, meta.chunk_frames);
    const { cap, res } = await tracedMoc(dit, fx.get('x_t'));
    expect(res.traces).toHaveLength(cfg.depth);
    const dims = { H: cfg.heads, N: seq.n, D: cfg.headDim };
    const table = seq.internal;
    for (let i = 0; i < cfg.depth; i++) {
      const k = cap.get(`blocks.${i}.attn.k`)!;
      const desc = Float32Array.from(chunkMeanCpu(k, dims, table.start, table.end));
      const want = toStreamOrder(
        routingTrace(
          cap.get(`blocks.${i}.attn.q`)!,
          desc,
          cap.get(`blocks.${i}.routed`) as Int32Array,
          meta.top_k,
          dims,
          table,
        ),
        seq.toStream,
      );
      const got = res.traces[i];
      expect([got.H, got.C, got.D]).toEqual([cfg.heads, seq.stream.start.length, cfg.headDim]);
      expect(want.routes.to.length).toBeGreaterThan(0);
      for (const key of ['start', 'to', 'count'] as const)
        assertEqualInts(`blocks.${i}.routes.${key}`, got.routes[key], want.routes[key]);
      expect([...got.mandatory]).toEqual([...want.mandatory]);
      assertClose(`blocks.${i}.sparsity`, got.sparsity, want.sparsity, { atol: 1e-6, rtol: 0 });
      assertClose(`blocks.${i}.qMean`, got.qMean, want.qMean, TOL);
      assertClose(`blocks.${i}.desc`, got.desc, want.desc, TOL);
      // the scores they give: every pair, against the reference's
      const C = got.C;
      const scores = (t: typeof got): number[] =>
        Array.from({ length: cfg.heads * C * C }, (_, j) =>
          meanScore(t, Math.floor(j / (C * C)), Math.floor(j / C) % C, j % C),
        );
      assertClose(`blocks.${i}.meanScore`, scores(got), scores(want), TOL);
    }
  });

  for (const view of ['spatial', 'unrotated'] as const) {
    it(`routing view '${view}': routing by the view's q, k, exact in every layer; velocity; traces score with the view`, async () => {
      const { meta } = fx;
      const rv = loadRouteViews();
      const model = await loadFixtureModel();
      const vdit = MocDiT.create(eng, { ...model, config: { ...model.config, routeView: view } });
      const cfg = vdit.config;
      const seq = vdit.sequence(meta.frames, meta.chunk_frames);
      const { cap, res, v } = await tracedMoc(vdit, rv.tensor('x_t').data as Float32Array);
      vdit.dispose();
      for (const s of ['q_route', 'k_route'])
        assertClose(
          `blocks.0.attn.${s}`,
          cap.get(`blocks.0.attn.${s}`)!,
          rv.tensor(`${view}.blocks.0.attn.${s}`).data as Float32Array,
          TOL,
        );
      const dims = { H: cfg.heads, N: seq.n, D: cfg.headDim };
      const table = seq.internal;
      let differs = false;
      for (let i = 0; i < cfg.depth; i++) {
        const routed = cap.get(`blocks.${i}.routed`) as Int32Array;
        assertEqualInts(
          `blocks.${i}.routed`,
          routedToStream(routed, seq.toStream),
          rv.tensor(`${view}.blocks.${i}.routed`).data as Int32Array,
        );
        // the view matters: the rotated q, k of this very pass would route otherwise somewhere
        const rotary = mocReference(
          cap.get(`blocks.${i}.attn.q`) as Float32Array,
          cap.get(`blocks.${i}.attn.k`) as Float32Array,
          cap.get(`blocks.${i}.attn.v`) as Float32Array,
          dims,
          table,
          { topK: meta.top_k, causal: meta.causal, mode: 'moc' },
        );
        differs ||= rotary.routed.some((r, j) => r !== routed[j]);
        const desc = Float32Array.from(
          chunkMeanCpu(cap.get(`blocks.${i}.attn.k_route`)!, dims, table.start, table.end),
        );
        const want = toStreamOrder(
          routingTrace(cap.get(`blocks.${i}.attn.q_route`)!, desc, routed, meta.top_k, dims, table),
          seq.toStream,
        );
        assertClose(`blocks.${i}.trace.qMean`, res.traces[i].qMean, want.qMean, TOL);
        assertClose(`blocks.${i}.trace.desc`, res.traces[i].desc, want.desc, TOL);
      }
      expect(differs).toBe(true);
      assertClose(`velocity (${view})`, v, rv.tensor(`${view}.velocity`).data as Float32Array, TOL);
    });
  }

  it('dense and shot velocities', async () => {
    assertClose('velocity.dense', await run('dense'), fx.get('velocity.dense'), TOL);
    assertClose('velocity.shot', await run('shot'), fx.get('velocity.shot'), TOL);
  });

  it('x-prediction: forward returns (x_t − x̂0) / max(t, tMin) of the same network output', async () => {
    const { meta } = fx;
    const model = await loadFixtureModel();
    const xdit = MocDiT.create(eng, { ...model, config: { ...model.config, prediction: 'x', tMin: 0.05 } });
    const cfg = dit.config;
    const T = meta.frames.reduce((a, b) => a + b, 0);
    const tShot = meta.frames.map((_, s) => (s === 0 ? 0.01 : 0.3 + 0.2 * s)); // shot 0 below tMin
    const xs = fx.get('x_t');
    const out = async (m: MocDiT): Promise<Float32Array> => {
      const x = eng.upload(xs, [T, 3, cfg.imageSize, cfg.imageSize], 'test.x');
      const res = await m.forward(x, tShot, m.textEmbedding(fx.ints('text')), meta.frames, meta.chunk_frames, {
        mode: 'moc',
        topK: meta.top_k,
        causal: meta.causal,
      });
      const r = (await eng.read(res.velocity)) as Float32Array;
      res.velocity.dispose();
      x.dispose();
      return r;
    };
    const y = await out(dit); // prediction 'v': the network output itself
    const v = await out(xdit);
    const per = xs.length / T;
    const want = new Float32Array(xs.length);
    let f0 = 0;
    meta.frames.forEach((F, s) => {
      for (let i = f0 * per; i < (f0 + F) * per; i++) want[i] = (xs[i] - y[i]) / Math.max(tShot[s], 0.05);
      f0 += F;
    });
    assertClose('velocity.x-prediction', v, want, TOL);
  });

  it('sampler: timesteps as torch.linspace, one and two Euler steps with CFG and a fixed shot', async () => {
    const { meta } = fx;
    expect(Array.from(timesteps(1))).toEqual(Array.from(fx.get('sampler.ts1')));
    expect(Array.from(timesteps(2))).toEqual(Array.from(fx.get('sampler.ts2')));
    for (const steps of [2]) {
      const x = await sample(
        dit,
        {
          text: fx.ints('text'),
          frames: meta.frames,
          noise: fx.get('sampler.noise'),
          keep: { shots: meta.keepShots, frames: fx.get('sampler.keep') },
        },
        {
          steps,
          guidance: meta.guidance,
          attention: { mode: 'moc', topK: meta.top_k, causal: meta.causal, chunkFrames: meta.chunk_frames },
        },
      );
      assertClose(`sampler.steps${steps}`, (await eng.read(x)) as Float32Array, fx.get(`sampler.steps${steps}`), TOL);
      x.dispose();
    }
  });
});

describe('Generator (tiny fixture model)', () => {
  let gen: Generator;
  let fx: Fixture;
  beforeAll(async () => {
    gen = Generator.create(await testEngine(), await loadFixtureModel());
    fx = loadFixture();
  });
  const request = (over: Partial<GenerateRequest> = {}): GenerateRequest => ({
    storyboard: {
      version: 1,
      globalCaption: 'Character 1 is a red star.',
      shots: [
        { caption: 'Character 1 bounces in the meadow.', frames: 2, seed: 5 },
        { caption: 'Character 1 spins, close-up.', frames: 1, seed: 6 },
      ],
    },
    steps: 2,
    guidance: 3,
    attention: { mode: 'moc', topK: 2, chunkFrames: 1, causal: true },
    previewEvery: 1,
    traceEvery: 1,
    ...over,
  });

  const quick = { steps: 1, guidance: 1, previewEvery: 0, traceEvery: 0 };

  it('generates frames, traces, timings and progress', async () => {
    const progress: GenerateProgress[] = [];
    const r = await gen.generate(request(), (p) => progress.push(p));
    expect(r.shots.map((s) => [s.shot, s.frames.length, s.width, s.seed])).toEqual([
      [0, 2 * 16 * 16 * 4, 16, 5],
      [1, 16 * 16 * 4, 16, 6],
    ]);
    expect(progress.map((p) => p.step)).toEqual([1, 2]);
    expect(progress[0].previews?.map((p) => p.shot)).toEqual([0, 1]);
    expect(progress[1].previews).toBeUndefined();
    expect(r.traces.map((t) => t.step)).toEqual([1, 2]);
    const C = r.traces[0].chunks.start.length;
    expect(C).toBe(3 + 3);
    expect(r.traces[0].layers).toHaveLength(2);
    expect(r.traces[0].layers[0].routes.start).toHaveLength(2 * C + 1);
    expect(r.traces[0].layers[0].qMean).toHaveLength(2 * C * gen.config.headDim);
    expect(r.timings).toHaveLength(2);
    for (const t of r.timings) {
      expect(t.total).toBeGreaterThan(0);
      expect(t.dispatches).toBeGreaterThan(2 * 20); // two model calls of a few dozen kernels each
      expect(t.attention).toBeUndefined(); // phases only when profiled
    }
    expect(r.sparsity).toBeGreaterThan(0);
    expect(r.sparsity).toBeLessThan(1);
    expect(r.attentionFlops.visited).toBeLessThan(r.attentionFlops.dense);
  });

  it('profile: every step split into attention, routing and the rest', async () => {
    const r = await gen.generate(request({ ...quick, steps: 2, profile: true }));
    expect(r.timings).toHaveLength(2);
    for (const t of r.timings) {
      for (const p of [t.attention, t.routing, t.other]) expect(p).toBeGreaterThanOrEqual(0);
      expect(t.attention! + t.routing!).toBeGreaterThan(0);
    }
  });

  it('the same seeds give the same video; the last step is always traced', async () => {
    const a = await gen.generate(request(quick));
    const b = await gen.generate(request(quick));
    expect(b.traces.map((t) => t.step)).toEqual([1]);
    expect(Buffer.from(a.shots[1].frames).equals(Buffer.from(b.shots[1].frames))).toBe(true);
  });

  it('keeps a fixed shot as given and regenerates the other', async () => {
    const first = await gen.generate(request(quick));
    const keep = [{ shot: 0, frames: first.shots[0].frames }];
    const r = await gen.generate(
      request({
        ...quick,
        keep,
        storyboard: {
          ...request().storyboard,
          shots: request().storyboard.shots.map((s, i) => (i === 1 ? { ...s, seed: 9 } : s)),
        },
      }),
    );
    expect(Buffer.from(r.shots[0].frames).equals(Buffer.from(first.shots[0].frames))).toBe(true);
    expect(Buffer.from(r.shots[1].frames).equals(Buffer.from(first.shots[1].frames))).toBe(false);
  });

  it('cancels through an AbortSignal and stays usable', async () => {
    const ac = new AbortController();
    await expect(
      gen.generate(request({ ...quick, steps: 3 }), (p) => p.step === 1 && ac.abort(), ac.signal),
    ).rejects.toMatchObject({ name: 'AbortError' });
    const r = await gen.generate(request(quick));
    expect(r.shots).toHaveLength(2);
  });

  it('uses explicit noise when given (what the fixtures feed)', async () => {
    const { meta } = fx;
    const board = {
      version: 1 as const,
      globalCaption: meta.captions.global,
      shots: meta.captions.shots.map((caption, i) => ({ caption, frames: meta.frames[i], seed: meta.seeds[i] })),
    };
    const keepRgba = framesToRgba(fx.get('sampler.keep'), meta.frames[0], 16);
    const r = await gen.generate(
      {
        storyboard: board,
        steps: 1,
        guidance: meta.guidance,
        attention: { mode: 'moc', topK: meta.top_k, chunkFrames: 1, causal: true },
        keep: [{ shot: 0, frames: keepRgba }],
      },
      undefined,
      undefined,
      fx.get('sampler.noise'),
    );
    const want = framesToRgba(fx.get('sampler.steps1'), meta.frames[1], 16, meta.frames[0] * 3 * 256);
    let maxDiff = 0;
    want.forEach((v, i) => (maxDiff = Math.max(maxDiff, Math.abs(v - r.shots[1].frames[i]))));
    expect(maxDiff).toBeLessThanOrEqual(1);
  });
});
