/**
 * Teaching mode with the network's own numbers (src/worker/explain-network.ts) on Dawn with the
 * fixture model: for a generated video, the explanation's routed chunks are exactly the ones the
 * network routed the picked token to (blocks.{i}.routed, internal → stream ids), and its scores
 * are q·descriptor recomputed here on the CPU from the layer's q and k, in the model's internal
 * token order (mapped independently of the explainer's own mapping).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import type { Engine } from '../../src/engine/engine.ts';
import type { Storyboard } from '../../src/model/storyboard.ts';
import { Generator, prepareRequest, rgbaToFrames } from '../../src/model/generate.ts';
import { routedToStream } from './stream-order.ts';
import { tokenChunks } from '../../src/model/layout.ts';
import { NetworkExplainer } from '../../src/worker/explain-network.ts';
import type { Sequence } from '../../src/model/sequence.ts';
import type { ExplainRequest, Explanation } from '../../src/worker/protocol.ts';
import { testEngine } from '../helpers/gpu.ts';
import { loadFixtureModel } from './fixture.ts';

const board: Storyboard = {
  version: 1,
  globalCaption: 'Character 1 is a red star.',
  shots: [
    { caption: 'Character 1 bounces in the meadow.', frames: 2, seed: 5 },
    { caption: 'Character 1 spins, close-up.', frames: 1, seed: 6 },
    { caption: 'Character 1 bounces, wide.', frames: 2, seed: 7 },
  ],
};
const attention = { mode: 'moc' as const, topK: 1, chunkFrames: 1, causal: true };
const T_EXPLAIN = 0.5;

describe('NetworkExplainer (fixture model)', () => {
  let eng: Engine;
  let gen: Generator;
  let explainer: NetworkExplainer;
  let video: Uint8ClampedArray[];

  beforeAll(async () => {
    eng = await testEngine();
    gen = Generator.create(eng, await loadFixtureModel());
    explainer = new NetworkExplainer(gen);
    const r = await gen.generate({ storyboard: board, steps: 1, guidance: 1, attention });
    video = r.shots.map((s) => s.frames);
  });

  const request = (
    query: ExplainRequest['query'],
    head: number,
    layer: number,
    over: Partial<ExplainRequest> = {},
  ): ExplainRequest => ({
    globalCaptionTokens: 0, // not used with `network`
    shots: [],
    tokensPerFrame: 0,
    seed: 0,
    chunkFrames: attention.chunkFrames,
    topK: attention.topK,
    causal: attention.causal,
    query,
    head,
    network: { storyboard: board, frames: video, t: T_EXPLAIN, layer },
    ...over,
  });

  /**
   * The layer's q, k (or the routing view's q_route, k_route with `view`) and routing as the
   * network computes them (internal token order), from a forward pass of our own.
   */
  async function groundTruth(
    layer: number,
    g = gen,
    view = false,
  ): Promise<{ q: Float32Array; k: Float32Array; routed: Int32Array }> {
    const cfg = g.config;
    const frames = board.shots.map((s) => s.frames);
    const T = frames.reduce((a, b) => a + b, 0);
    const per = 3 * cfg.imageSize * cfg.imageSize;
    const xs = new Float32Array(T * per);
    let at = 0;
    frames.forEach((F, s) => {
      xs.set(rgbaToFrames(video[s], F, cfg.imageSize), at);
      at += F * per;
    });
    const { text } = prepareRequest(g.model, { storyboard: board, steps: 1, guidance: 1, attention });
    const x = eng.upload(xs, [T, 3, cfg.imageSize, cfg.imageSize], 'test.x');
    const cap = new Map<string, Float32Array | Int32Array>();
    const res = await g.dit.forward(
      x,
      frames.map(() => T_EXPLAIN),
      g.dit.textEmbedding(text),
      frames,
      attention.chunkFrames,
      {
        mode: 'moc',
        topK: attention.topK,
        causal: attention.causal,
        inspect: async (name, t) =>
          void (name.startsWith(`blocks.${layer}.`) && cap.set(name, (await eng.read(t)) as Float32Array | Int32Array)),
      },
    );
    res.velocity.dispose();
    x.dispose();
    const [q, k] = view ? ['q_route', 'k_route'] : ['q', 'k'];
    return {
      q: cap.get(`blocks.${layer}.attn.${q}`) as Float32Array,
      k: cap.get(`blocks.${layer}.attn.${k}`) as Float32Array,
      routed: cap.get(`blocks.${layer}.routed`) as Int32Array,
    };
  }

  /** The explanation's scores are q[h, ti] · the mean of k over the internal chunk holding each stream chunk. */
  function expectScores(
    r: Explanation,
    truth: { q: Float32Array; k: Float32Array },
    seq: Sequence,
    h: number,
    ti: number,
    D: number,
  ): void {
    const { internal, toStream, n: N } = seq;
    for (let b = 0; b < seq.stream.start.length; b++) {
      const ci = Array.from(toStream).indexOf(b);
      let s = 0;
      for (let d = 0; d < D; d++) {
        let m = 0;
        for (let t = internal.start[ci]; t < internal.end[ci]; t++) m += truth.k[(h * N + t) * D + d];
        s += truth.q[(h * N + ti) * D + d] * (m / (internal.end[ci] - internal.start[ci]));
      }
      expect(r.chunks[b].score).toBeCloseTo(s, 9);
    }
  }

  it("routes exactly as the network did, with scores q·φ(K) from the layer's own q and k", async () => {
    const cfg = gen.config;
    const { heads: H, headDim: D, depth } = cfg;
    const P = cfg.grid * cfg.grid;
    const seq = gen.dit.sequence(
      board.shots.map((s) => s.frames),
      attention.chunkFrames,
    );
    const { stream, internal, toStream, n: N } = seq;
    const K = attention.topK;
    const streamChunk = tokenChunks(stream);
    let checked = 0;
    let routedSeen = 0;
    for (let layer = 0; layer < depth; layer++) {
      const truth = await groundTruth(layer);
      for (const query of [
        { shot: 0, frame: 1, patch: 3 },
        { shot: 1, frame: 0, patch: 0 },
        { shot: 2, frame: 0, patch: P - 1 },
        { shot: 2, frame: 1, patch: 5 },
      ]) {
        for (let h = 0; h < H; h++) {
          const r = await explainer.explain(request(query, h, layer));
          // the stream token of the query, and its internal token: the same offset in the internal chunk holding its stream chunk
          const a = r.queryChunk;
          expect(streamChunk[r.queryToken]).toBe(a);
          expect(stream.chunks[a]).toMatchObject({ kind: 'video', shot: query.shot });
          const c = Array.from(toStream).indexOf(a);
          const ti = internal.start[c] + (r.queryToken - stream.start[a]);
          expect(internal.chunks[c]).toMatchObject({ kind: 'video', shot: query.shot });
          expect(ti).toBeGreaterThanOrEqual(seq.nText); // video tokens follow every text token internally

          // routing: exactly the network's, internal chunk ids → stream ids
          const row = routedToStream(truth.routed.subarray((h * N + ti) * K, (h * N + ti + 1) * K), toStream);
          const want = Array.from(row)
            .filter((b) => b >= 0)
            .sort((x, y) => x - y);
          const got = r.chunks.filter((ch) => ch.routed).map((ch) => ch.index);
          expect(got, `layer ${layer} head ${h} query ${JSON.stringify(query)}`).toEqual(want);
          routedSeen += got.length;

          expectScores(r, truth, seq, h, ti, D);
          expect(r.queryHead).toEqual(
            Array.from(truth.q.subarray((h * N + ti) * D, (h * N + ti) * D + Math.min(D, 8))),
          );
          // without a near tie, the float64 ranking agrees: the routed chunks are the best candidates
          if (!r.note) for (const ch of r.chunks.filter((x) => x.routed)) expect(ch.rank).toBeLessThan(K);
          expect(r).toMatchObject({
            origin: 'network',
            heads: H,
            headDim: D,
            head: h,
            network: { model: cfg.name, layers: depth, layer, t: T_EXPLAIN },
          });
          expect(r.source).toContain(
            `The network’s own numbers: model ${cfg.name}, layer ${layer + 1} of ${depth}, head ${h + 1} of ${H}, t = 0.5`,
          );
          checked++;
        }
      }
    }
    expect(checked).toBe(depth * 4 * H);
    expect(routedSeen).toBeGreaterThan(0); // some queries had candidates to route to
  });

  it("a model with a routing view: scores from the view's q_route, k_route, and the text says which view", async () => {
    const model = await loadFixtureModel();
    const vgen = Generator.create(eng, { ...model, config: { ...model.config, routeView: 'spatial' } });
    try {
      const seq = vgen.dit.sequence(
        board.shots.map((s) => s.frames),
        attention.chunkFrames,
      );
      const layer = 1;
      const truth = await groundTruth(layer, vgen, true);
      const plain = await groundTruth(layer, vgen, false);
      const r = await new NetworkExplainer(vgen).explain(request({ shot: 2, frame: 1, patch: 5 }, 1, layer));
      const a = r.queryChunk;
      const ti = seq.internal.start[Array.from(seq.toStream).indexOf(a)] + (r.queryToken - seq.stream.start[a]);
      expectScores(r, truth, seq, 1, ti, vgen.config.headDim);
      expect(truth.q.some((x, j) => x !== plain.q[j])).toBe(true); // the view's q is not the rotated q
      expect(r.network).toMatchObject({ routeView: 'spatial' });
      expect(r.source).toContain('routing view spatial');
    } finally {
      vgen.dispose();
    }
  });

  it('another head or token of the same video and layer needs no second forward pass; another layer does', async () => {
    await explainer.explain(request({ shot: 2, frame: 0, patch: 0 }, 0, 1));
    const d0 = eng.stats.dispatches;
    await explainer.explain(request({ shot: 1, frame: 0, patch: 2 }, 1, 1));
    expect(eng.stats.dispatches).toBe(d0);
    await explainer.explain(request({ shot: 1, frame: 0, patch: 2 }, 1, 0));
    expect(eng.stats.dispatches).toBeGreaterThan(d0);
    // other frames (a regenerated take) are another video
    const d1 = eng.stats.dispatches;
    const other = video.map((f) => f.map((v) => 255 - v));
    await explainer.explain(
      request({ shot: 1, frame: 0, patch: 2 }, 1, 0, {
        network: { storyboard: board, frames: other, t: T_EXPLAIN, layer: 0 },
      }),
    );
    expect(eng.stats.dispatches).toBeGreaterThan(d1);
  });

  it('refuses a layer, timestep, query or video outside the model, naming it; leaves the frames as they were', async () => {
    const before = video.map((f) => Uint8ClampedArray.from(f));
    const q = { shot: 0, frame: 0, patch: 0 };
    await expect(explainer.explain(request(q, 0, 2))).rejects.toMatchObject({
      code: 'bad-request',
      message: expect.stringMatching(/layer 2 is outside 1…2/),
    });
    await expect(
      explainer.explain(request(q, 0, 0, { network: { storyboard: board, frames: video, t: 2, layer: 0 } })),
    ).rejects.toThrow(/timestep 2/);
    await expect(explainer.explain(request(q, 2, 0))).rejects.toThrow(/head 2 is outside 0…1/);
    await expect(explainer.explain(request({ shot: 0, frame: 2, patch: 0 }, 0, 0))).rejects.toThrow(
      /frame 2 is outside shot 1/,
    );
    await expect(
      explainer.explain(
        request(q, 0, 0, { network: { storyboard: board, frames: [video[0], video[1], video[1]], t: 0.5, layer: 0 } }),
      ),
    ).rejects.toThrow(/shot 3's video has/);
    const unknown = {
      ...board,
      shots: board.shots.map((s, i) => (i === 1 ? { ...s, caption: 'Character 1 spinz.' } : s)),
    };
    await expect(
      explainer.explain(request(q, 0, 0, { network: { storyboard: unknown, frames: video, t: 0.5, layer: 0 } })),
    ).rejects.toThrow(/spinz/);
    video.forEach((f, s) => expect(Buffer.from(f).equals(Buffer.from(before[s]))).toBe(true));
  });
});
