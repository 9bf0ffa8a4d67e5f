/**
 * Teaching mode with the network's own numbers: one forward pass of the loaded model on a
 * generated video, q and k of one layer read back, and the explanation (explain.ts
 * `explainTokens`) worked out from them, with the routing the network computed for the token.
 *
 * The forward pass: the video's clean frames (RGBA → [T, 3, Hi, Wi] as the generator does it),
 * every shot at the same small timestep t, the storyboard's captions, MoC mode with the
 * request's top-k, chunk frames and causality (the run's).
 *
 * Token order: the network computes in its internal order (text tokens, then video; sequence.ts),
 * the explanation works in stream order (MOC.md §3). Tokens keep their order inside a chunk, and
 * internal chunk c is stream chunk toStream[c], so the capture is permuted to stream order token
 * by token, and routed chunk ids are mapped through toStream.
 *
 * A model with a routing view (config routeView, MOC.md §3b) scores with that view's q and k,
 * which the forward pass shows as attn.q_route / attn.k_route: those are captured instead.
 *
 * The capture of the last video and layer is kept, so another head or another token of the same
 * video needs no second forward pass; another layer, timestep, caption or take does.
 *
 * Legend: S shots, T frames, N tokens, H heads, D head dim, K routed slots (top-k).
 */
import { routeViewText } from '../model/config.ts';
import { prepareRequest, rgbaToFrames, type Generator } from '../model/generate.ts';
import { memoryProblem } from '../model/memory.ts';
import type { Sequence } from '../model/sequence.ts';
import { WorkerError } from './errors.ts';
import { explainTokens, locateQuery } from './explain.ts';
import type { ExplainRequest, Explanation } from './protocol.ts';

/** One layer's numbers of one video, in stream order. */
interface Capture {
  /** What was run (all but the frames), and the frames themselves (copies), to tell a repeat. */
  key: string;
  frames: Uint8Array[];
  seq: Sequence;
  q: Float32Array; // [H, N, D]
  k: Float32Array; // [H, N, D]
  routed: Int32Array; // [H, N, K] stream chunk ids, −1 unused
  K: number;
}

/** Stream token → internal token, [N]: internal chunk c holds stream chunk toStream[c]'s tokens, in order. */
export function streamToInternalTokens(seq: Sequence): Int32Array {
  const { internal, stream, toStream } = seq;
  const map = new Int32Array(seq.n);
  for (let c = 0; c < internal.start.length; c++) {
    const s = toStream[c];
    for (let j = 0; j < internal.end[c] - internal.start[c]; j++) map[stream.start[s] + j] = internal.start[c] + j;
  }
  return map;
}

/** Rows of x [H, N, w] (internal token order) → stream token order; `value` maps each entry. */
function toStreamTokens<A extends Float32Array | Int32Array>(
  x: A,
  H: number,
  w: number,
  order: Int32Array,
  value?: (v: number) => number,
): A {
  const N = order.length;
  const out = new (x.constructor as new (n: number) => A)(x.length);
  for (let h = 0; h < H; h++) {
    for (let t = 0; t < N; t++) {
      const from = (h * N + order[t]) * w;
      const to = (h * N + t) * w;
      if (value) for (let j = 0; j < w; j++) out[to + j] = value(x[from + j]);
      else out.set(x.subarray(from, from + w), to);
    }
  }
  return out;
}

/** `t` as shown: three significant digits. */
function formatT(t: number): string {
  return String(Number(t.toPrecision(3)));
}

/** Explains query tokens of generated videos with the generator's model (see the file comment). */
export class NetworkExplainer {
  private kept: Capture | null = null;

  constructor(private readonly gen: Generator) {}

  /**
   * @throws WorkerError `bad-request` for a layer, timestep, query or video outside the model's
   *   layout; RequestError / CaptionError / StoryboardError (model input errors) for options,
   *   captions or a storyboard the model refuses; the engine's errors as thrown.
   */
  async explain(req: ExplainRequest): Promise<Explanation> {
    const net = req.network;
    if (!net) throw new WorkerError('bad-request', 'explain: no generated video to run the network on');
    const { gen } = this;
    const cfg = gen.config;
    const bad = (msg: string): never => {
      throw new WorkerError('bad-request', msg);
    };
    if (!Number.isInteger(net.layer) || net.layer < 0 || net.layer >= cfg.depth)
      bad(`layer ${net.layer} is outside 1…${cfg.depth} of model ${cfg.name}`);
    if (!(net.t >= 0 && net.t <= 1)) bad(`timestep ${net.t} is outside [0, 1]`);
    const attention = { mode: 'moc' as const, topK: req.topK, chunkFrames: req.chunkFrames, causal: req.causal };
    const { storyboard, text } = prepareRequest(gen.model, {
      storyboard: net.storyboard,
      steps: 1,
      guidance: 1,
      attention,
    });
    const frames = storyboard.shots.map((s) => s.frames);
    const size = cfg.imageSize;
    if (net.frames.length !== frames.length)
      bad(`the video has ${net.frames.length} shots, the storyboard ${frames.length}`);
    net.frames.forEach((f, s) => {
      if (f.length !== frames[s] * size * size * 4)
        bad(
          `shot ${s + 1}'s video has ${f.length} bytes, expected ${frames[s]} frames of ${size}×${size} RGBA for model ${cfg.name}`,
        );
    });
    const seq = gen.dit.sequence(frames, req.chunkFrames);
    const token = locateQuery(seq.stream, req, frames, cfg.grid * cfg.grid, cfg.heads);

    const key = JSON.stringify({ text: Array.from(text), frames, attention, t: net.t, layer: net.layer });
    const cap =
      this.kept && this.kept.key === key && sameBytes(this.kept.frames, net.frames)
        ? this.kept
        : await this.capture(key, net.frames, seq, text, net.t, net.layer, attention);
    this.kept = cap;

    const { heads: H, headDim: D } = cfg;
    const N = seq.n;
    const h = req.head;
    return explainTokens(
      {
        q: cap.q,
        k: cap.k,
        dims: { H, N, D },
        table: seq.stream,
        token,
        head: h,
        topK: req.topK,
        causal: req.causal,
        causalText: gen.config.causalText,
        routed: cap.routed.subarray((h * N + token) * cap.K, (h * N + token + 1) * cap.K),
      },
      {
        origin: 'network',
        network: { model: cfg.name, layers: cfg.depth, layer: net.layer, t: net.t, routeView: cfg.routeView },
        source:
          `The network’s own numbers: model ${cfg.name}, layer ${net.layer + 1} of ${cfg.depth}, head ${h + 1} of ${H}, t = ${formatT(net.t)} for every shot. ` +
          `One forward pass in MoC mode (top-k ${req.topK}, ${req.chunkFrames}-frame chunks, ${req.causal ? 'causal' : 'not causal'}) on the generated video’s clean frames ` +
          `with the storyboard’s captions; this layer’s q and k read back from the GPU (the routing view ${cfg.routeView}: ${routeViewText(cfg.routeView)}), ` +
          `descriptors and scores worked out from them on the CPU (float64), ` +
          `the routed chunks as the network chose them.`,
      },
    );
  }

  /** Runs the model once and keeps layer `layer`'s q, k and routing, in stream order. */
  private async capture(
    key: string,
    rgba: readonly Uint8ClampedArray[],
    seq: Sequence,
    text: Int32Array,
    t: number,
    layer: number,
    attention: { topK: number; chunkFrames: number; causal: boolean },
  ): Promise<Capture> {
    this.kept = null; // its memory is not needed while the next one is made
    const { gen } = this;
    const { eng, dit } = gen;
    const cfg = gen.config;
    const frames = seq.frames;
    let weightBytes = 0;
    for (const w of gen.model.weights.values()) weightBytes += w.data.length * 4;
    const problem = memoryProblem(
      cfg,
      { frames, attention: { mode: 'moc', ...attention }, weightBytes, traced: false },
      eng.adapter.limits,
    );
    if (problem) throw new WorkerError('bad-request', problem);

    const size = cfg.imageSize;
    const per = 3 * size * size;
    const x = new Float32Array(seq.frameShot.length * per); //                               [T, 3, Hi, Wi]
    let at = 0;
    frames.forEach((F, s) => {
      x.set(rgbaToFrames(rgba[s], F, size), at);
      at += F * per;
    });
    const b = `blocks.${layer}.`;
    const [qName, kName] = cfg.routeView === 'rotary' ? ['q', 'k'] : ['q_route', 'k_route']; // what routing scores with
    const got: { q?: Float32Array; k?: Float32Array; routed?: Int32Array } = {};
    let K = attention.topK;
    const xt = eng.upload(x, [seq.frameShot.length, 3, size, size], 'explain.x');
    try {
      const res = await dit.forward(
        xt,
        frames.map(() => t),
        dit.textEmbedding(text),
        frames,
        attention.chunkFrames,
        {
          mode: 'moc',
          topK: attention.topK,
          causal: attention.causal,
          inspect: async (name, tensor) => {
            if (name === `${b}attn.${qName}`) got.q = (await eng.read(tensor)) as Float32Array;
            else if (name === `${b}attn.${kName}`) got.k = (await eng.read(tensor)) as Float32Array;
            else if (name === `${b}routed`) {
              K = tensor.shape[2];
              got.routed = tensor.size ? ((await eng.read(tensor)) as Int32Array) : new Int32Array(0);
            }
          },
        },
      );
      res.velocity.dispose();
    } finally {
      xt.dispose();
    }
    if (!got.q || !got.k || !got.routed)
      throw new Error(`explain: the forward pass did not show layer ${layer}'s q, k and routing`);
    const order = streamToInternalTokens(seq);
    const { heads: H, headDim: D } = cfg;
    return {
      key,
      frames: rgba.map((f) => Uint8Array.from(f)),
      seq,
      q: toStreamTokens(got.q, H, D, order),
      k: toStreamTokens(got.k, H, D, order),
      routed: toStreamTokens(got.routed, H, K, order, (r) => (r >= 0 ? seq.toStream[r] : -1)),
      K,
    };
  }

  /** Forgets the kept capture. */
  clear(): void {
    this.kept = null;
  }
}

function sameBytes(a: readonly Uint8Array[], b: readonly Uint8ClampedArray[]): boolean {
  if (a.length !== b.length) return false;
  for (let s = 0; s < a.length; s++) {
    if (a[s].length !== b[s].length) return false;
    for (let i = 0; i < a[s].length; i++) if (a[s][i] !== b[s][i]) return false;
  }
  return true;
}
