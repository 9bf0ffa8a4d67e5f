/**
 * The MoC DiT forward pass on the engine's kernels: train/model.py's MoCDiT, top to bottom.
 *
 * Legend
 *   S shots   T frames   L caption tokens   G patches per side   p patch side   P = 3·p²
 *   Nt = (S+1)·L text tokens   Nv = T·G² video tokens   N = Nt + Nv   (internal order: text, video)
 *   d width   H heads   D = d/H head dim   h MLP hidden   C chunks   K routed chunks per query
 *
 * Data flow (train/model.py's docstring): text ids → text_embed + text_pos → xt [Nt, d];
 * frames [T, 3, Hi, Wi] → patchify → video_embed → xv [Nv, d]; per-shot timesteps → t_embed →
 * silu → cs [S+1, d] (row 0: the global caption at t = 0); depth × block; final adaLN + proj →
 * unpatchify → velocity [T, 3, Hi, Wi]. Weight names are the checkpoint's.
 *
 * Head split / merge ([N, 3·H·D] ↔ [H, N, D]) is a row gather (gatherRows) with the maps of
 * dit-state.ts. The text and video qkv rows meet in one buffer: the text matmul writes its
 * prefix, the video rows are copied after it (Engine.copy; buffers bind from offset 0 only).
 * RoPE turns q and k by the per-token tables [N, D] of dit-state.ts (float positions: captions
 * sit at the frame centre (G−1)/2).
 * Routing view (config routeView, MOC.md §3b): for 'spatial' the normed q, k are also turned by
 * the time-0 tables, for 'unrotated' kept as they were before the rotation; routing (and the
 * traces) score with those, attention with the rotated q, k. Only where something routes or is
 * traced; 'rotary' routes with the rotated q, k and makes nothing more.
 */
import type { Engine } from '../engine/engine.ts';
import { UnsupportedError } from '../engine/errors.ts';
import { chunkMean } from '../engine/kernels/chunk-mean.ts';
import { binary, unary } from '../engine/kernels/elementwise.ts';
import { checkHeadDim, flashAttention } from '../engine/kernels/flash-attention.ts';
import { gatherRows } from '../engine/kernels/gather-rows.ts';
import { matmul } from '../engine/kernels/matmul.ts';
import { mocAttention, type MocDesign } from '../engine/kernels/moc-attention.ts';
import { MAX_TOP_K, mocRoute } from '../engine/kernels/moc-route.ts';
import { gatedResidual, modulate } from '../engine/kernels/modulate.ts';
import { norm } from '../engine/kernels/norm.ts';
import { patchify, unpatchify } from '../engine/kernels/patchify.ts';
import { rope } from '../engine/kernels/rope.ts';
import { Tensor } from '../engine/tensor.ts';
import { decodeRoutes, MAX_ROUTE_COUNT, traceCounts } from '../engine/kernels/trace.ts';
import type { AttentionMode, LayerTrace } from './api.ts';
import type { ModelConfig } from './config.ts';
import type { ChunkTable } from './layout.ts';
import { emptyRoutes, traceOf } from './routing-trace.ts';
import { buildSeqState, disposeState, timestepFeatures, type RowState, type SeqState } from './dit-state.ts';
import { ShotCache, type PrefixCache, type PrefixLayout } from './shot-cache.ts';
import type { Sequence } from './sequence.ts';
import type { LoadedModel } from './weights.ts';

export interface ForwardOptions {
  mode: AttentionMode;
  topK: number;
  causal: boolean;
  /** Sparse kernel design (moc-attention.ts); its default when omitted. */
  design?: MocDesign;
  /** Collect one routing trace per layer (summarised on the GPU, read back after the pass). */
  trace?: boolean;
  /** Called with named intermediate tensors (tests, debugging); awaited before they are reused. */
  inspect?: (name: string, t: Tensor) => Promise<void>;
  /** Times phases (attention, routing, other). */
  timer?: PhaseTimer;
  /**
   * Run only the suffix (shots from `layout.first` on) through the network, attending over the
   * cached prefix (shot-cache.ts; MoC mode, causal routing, a causalText model, no trace). The
   * velocity still covers every frame: zeros for the prefix's.
   */
  cached?: { layout: PrefixLayout; cache: PrefixCache };
}

export type Phase = 'attention' | 'routing' | 'other';

/** Runs a phase of GPU work and accounts its time (see generate.ts for the implementations). */
export interface PhaseTimer {
  run<T>(phase: Phase, fn: () => Promise<T>): Promise<T>;
}

export interface ForwardResult {
  /** Velocity [T, 3, Hi, Wi]; the caller disposes it. */
  velocity: Tensor;
  /** One trace per layer, chunks in stream order (when requested). */
  traces: LayerTrace[];
}

/** One layer's trace summaries, on the GPU until the forward pass has been recorded (stream order). */
interface PendingTrace {
  qMean: Tensor; // f32 [H, C, D] chunk means of q
  desc: Tensor; // f32 [H, C, D] chunk means of k
  routes: Tensor | null; // u32 route words (traceCounts; 'moc' only, nothing is routed otherwise)
  table: ChunkTable; // stream-order table of the mode (mandatory links)
  mode: 'moc' | 'dense';
}

/** Sequences (frame layouts) whose GPU constants are kept; the least recently used goes first. */
const MAX_SEQUENCES = 4;

/**
 * Route counts are 16-bit (engine/kernels/trace.ts). A token's routed chunks are distinct, so
 * the count of a pair (a, b) is at most |a|: chunks up to MAX_ROUTE_COUNT tokens always fit.
 * @throws UnsupportedError for a longer chunk.
 */
function checkRouteCounts(table: ChunkTable): void {
  for (let c = 0; c < table.start.length; c++) {
    const len = table.end[c] - table.start[c];
    if (len > MAX_ROUTE_COUNT) {
      throw new UnsupportedError(
        `routing trace: chunk ${c} has ${len} tokens, more than the ${MAX_ROUTE_COUNT} a 16-bit route count holds; use fewer chunk frames`,
      );
    }
  }
}

/** A view of `t`'s buffer from offset 0 with another (not larger) shape; it owns nothing. */
function prefix(t: Tensor, shape: number[]): Tensor {
  return new Tensor(t.buffer, shape, t.dtype, null);
}

export class MocDiT {
  /** Kept-shot keys and values across generations (freed with the model). */
  readonly shotCache = new ShotCache();
  private readonly seqs = new Map<string, SeqState>();
  private readonly w = new Map<string, Tensor>();
  private qkNorm: Tensor[] = []; // per block: [2, 2D] rows text/video, chunks q/k: weight − 1
  private normShift: Tensor | null = null; // zeros [2, D]
  private disposed = false;

  private constructor(
    readonly eng: Engine,
    readonly config: ModelConfig,
    private readonly model: LoadedModel,
  ) {}

  /**
   * Uploads the weights (as f32) and prepares the constant tensors.
   * @throws UnsupportedError when the head dim is not one the attention kernels take.
   */
  static create(eng: Engine, model: LoadedModel): MocDiT {
    const cfg = model.config;
    checkHeadDim('MocDiT', cfg.headDim);
    const dit = new MocDiT(eng, cfg, model);
    for (const [name, w] of model.weights) {
      if (name === 'text_embed.weight' || name === 'text_pos.weight') continue; // used on the CPU
      dit.w.set(name, eng.upload(w.data, w.shape, `dit.${name}`));
    }
    const D = cfg.headDim;
    dit.normShift = eng.upload(new Float32Array(2 * D), [2, D], 'dit.qk-norm.shift');
    for (let i = 0; i < cfg.depth; i++) {
      const t = new Float32Array(4 * D);
      const get = (s: string): Float32Array => model.weights.get(`blocks.${i}.attn.${s}.weight`)!.data;
      [get('q_norm_text'), get('k_norm_text'), get('q_norm_video'), get('k_norm_video')].forEach((wt, j) => {
        for (let c = 0; c < D; c++) t[j * D + c] = wt[c] - 1;
      });
      dit.qkNorm.push(eng.upload(t, [2, 2 * D], `dit.blocks.${i}.qk-norm`));
    }
    return dit;
  }

  private weight(name: string): Tensor {
    const t = this.w.get(name);
    if (!t) throw new Error(`MocDiT: no weight '${name}'`);
    return t;
  }

  /** out = x · W{name}ᵀ + b{name}. */
  private linear(x: Tensor, name: string, out?: Tensor): Promise<Tensor> {
    return matmul(this.eng, x, this.weight(`${name}.weight`), { bias: this.weight(`${name}.bias`), transB: true, out });
  }

  /** The text stream xt [Nt, d] = text_embed[ids] + text_pos (on the CPU: a lookup). */
  textEmbedding(ids: Int32Array): Float32Array {
    const { dim: d, textLen: L, vocabSize: V } = this.config;
    const E = this.model.weights.get('text_embed.weight')!.data;
    const Pe = this.model.weights.get('text_pos.weight')!.data;
    const out = new Float32Array(ids.length * d);
    for (let n = 0; n < ids.length; n++) {
      const id = ids[n];
      if (!(id >= 0 && id < V)) throw new RangeError(`text id ${id} at ${n} is outside the vocabulary of ${V}`);
      const l = n % L;
      for (let j = 0; j < d; j++) out[n * d + j] = E[id * d + j] + Pe[l * d + j];
    }
    return out;
  }

  /** The layout of shots with `frames` frames (cached with its GPU constants). */
  sequence(frames: readonly number[], chunkFrames: number): Sequence {
    return this.state(frames, chunkFrames).seq;
  }

  private state(frames: readonly number[], chunkFrames: number): SeqState {
    const key = `${frames.join(',')}|${chunkFrames}`;
    const hit = this.seqs.get(key);
    if (hit) {
      this.seqs.delete(key); // most recently used last
      this.seqs.set(key, hit);
      return hit;
    }
    if (this.seqs.size >= MAX_SEQUENCES) {
      const [oldest, st] = this.seqs.entries().next().value as [string, SeqState];
      this.seqs.delete(oldest);
      disposeState(st);
    }
    const st = buildSeqState(this.eng, this.config, frames, chunkFrames);
    this.seqs.set(key, st);
    return st;
  }

  /**
   * Velocity of x_t (train/model.py MoCDiT.forward, batch 1).
   * @param x frames [T, 3, Hi, Wi] (f32, about [−1, 1]). @param tShot per-shot timesteps [S].
   * @param text the text stream xt [Nt, d] from `textEmbedding` (uploaded here).
   * @param frames frames per shot [S]; @param chunkFrames frames per video chunk.
   * @throws UnsupportedError for top_k beyond the routing kernel; ShapeError for bad shapes.
   */
  async forward(
    x: Tensor,
    tShot: ArrayLike<number>,
    text: Float32Array,
    frames: readonly number[],
    chunkFrames: number,
    opts: ForwardOptions,
  ): Promise<ForwardResult> {
    if (this.disposed) throw new Error('MocDiT: used after dispose()');
    if (opts.mode === 'moc' && (opts.topK < 0 || opts.topK > MAX_TOP_K))
      throw new UnsupportedError(`top_k ${opts.topK} is outside 0..${MAX_TOP_K}`);
    const { eng, config: cfg } = this;
    const { dim: d, heads: H, headDim: D, depth } = cfg;
    const st = this.state(frames, chunkFrames);
    const { seq } = st;
    const cached = opts.cached;
    if (
      cached &&
      (opts.mode !== 'moc' || !opts.causal || !cfg.causalText || opts.trace || cfg.routeView !== 'rotary')
    ) {
      throw new UnsupportedError(
        'forward: a cached prefix needs MoC mode, causal routing, a causal-text model routing with q, k as rotated, and no trace',
      );
    }
    const view = cfg.routeView !== 'rotary' && (opts.mode === 'moc' || opts.trace) ? cfg.routeView : 'rotary'; // see the file comment
    // the rows the network computes: every token, or the suffix's after a cached prefix
    const rows: RowState = cached ? cached.layout.rows : st;
    const { nText: Nt, nVideo: Nv } = rows;
    const Nr = Nt + Nv;
    const N = seq.n; // attention tokens
    const S = frames.length;
    const T = seq.frameShot.length;
    const Tr = cached ? T - cached.layout.framesPrefix : T; // frames computed
    if (tShot.length !== S) throw new RangeError(`forward: ${tShot.length} timesteps for ${S} shots`);
    if (text.length !== seq.nText * d)
      throw new RangeError(`forward: text stream has ${text.length} values, expected [${seq.nText}, ${d}]`);
    const phase = <R>(p: Phase, fn: () => Promise<R>): Promise<R> => (opts.timer ? opts.timer.run(p, fn) : fn());
    const inspect = async (name: string, t: Tensor): Promise<void> => {
      if (opts.inspect) await opts.inspect(name, t);
    };
    const pending: PendingTrace[] = [];
    const temps: Tensor[] = [];
    const tmp = (t: Tensor): Tensor => (temps.push(t), t);
    const free = (...ts: Tensor[]): void => ts.forEach((t) => t.dispose());

    // conditioning: cs = silu(t_embed([0, t_1 … t_S]))                                      [S+1, d]
    const feats = tmp(
      eng.upload(timestepFeatures([0, ...Array.from(tShot)], cfg.tFreqDim), [S + 1, cfg.tFreqDim], 'dit.t-features'),
    );
    const cs = tmp(
      await phase('other', async () => {
        const h1 = await this.linear(feats, 't_embed.fc1'); //                                  [S+1, d]
        const a1 = await unary(eng, 'silu', h1);
        const c = await this.linear(a1, 't_embed.fc2'); //                                     [S+1, d]
        free(h1, a1);
        return unary(eng, 'silu', tmp(c));
      }),
    );

    // streams
    const xt = tmp(eng.upload(cached ? text.subarray(cached.layout.textStart * d) : text, [Nt, d], 'dit.xt')); // [Nt, d]
    let xPatches: Tensor | undefined; // kept for x-prediction's v = (x_t − x̂0) / t             [Nv, P]
    const xv = tmp(
      await phase('other', async () => {
        const img = cfg.imageSize;
        const xr = cached
          ? await gatherRows(eng, x.view([T, cfg.channels * img * img]), cached.layout.frameIdx, {
              shape: [Tr, cfg.channels, img, img],
            })
          : x;
        const patches = await patchify(eng, xr, cfg.patchSize); //                              [Nv, P]
        if (xr !== x) xr.dispose();
        const out = await this.linear(patches, 'video_embed'); //                              [Nv, d]
        if (cfg.prediction === 'x') xPatches = tmp(patches);
        else patches.dispose();
        return out;
      }),
    );

    try {
      for (let i = 0; i < depth; i++) {
        const b = `blocks.${i}.`;
        const last = i === depth - 1; // pre-only text: keys/values only, stream not updated
        const [modT, modV, qkv] = await phase('other', async () => {
          const modT = await this.linear(cs, `${b}mod_text`); //                              [S+1, 6d | 2d]
          const modV = await this.linear(cs, `${b}mod_video`); //                             [S+1, 6d]
          const qkv = eng.tensor([Nr, 3 * d], 'f32', 'dit.qkv'); //                           [Nr, 3d] text rows, then video rows
          const lt = await norm(eng, 'layer', xt);
          const ht = await modulate(eng, lt, { table: modT, chunk: 0 }, { table: modT, chunk: 1 }, rows.condText); // [Nt, d]
          await this.linear(ht, `${b}attn.qkv_text`, prefix(qkv, [Nt, 3 * d]));
          const lv = await norm(eng, 'layer', xv);
          const hv = await modulate(eng, lv, { table: modV, chunk: 0 }, { table: modV, chunk: 1 }, rows.condVideo); // [Nv, d]
          const qkvV = await this.linear(hv, `${b}attn.qkv_video`); //                        [Nv, 3d]
          eng.copy(qkvV, qkv, Nt * 3 * d);
          free(lt, ht, lv, hv, qkvV);
          return [modT, modV, qkv];
        });

        // q, k, v [H, Nr, D]; q and k RMS-normed with their stream's weight, then rotated; the
        // routing view's q, k [H, N, D] beside them where the model has one and it is needed
        const [q, k, v, qr, kr] = await phase('other', async () => {
          const qkvRows = qkv.view([Nr * 3 * H, D]);
          const out: Tensor[] = [];
          const route: Tensor[] = [];
          for (let j = 0; j < 3; j++) {
            const g = await gatherRows(eng, qkvRows, rows.gatherQkv[j], { shape: [H, Nr, D] }); // [H, Nr, D]
            if (j < 2) {
              const n0 = await norm(eng, 'rms', g);
              const n1 = await modulate(
                eng,
                n0.view([H * Nr, D]),
                this.normShift!,
                { table: this.qkNorm[i], chunk: j },
                rows.tokenType,
                eng.tensor([H, Nr, D], 'f32', 'dit.qk'),
              ); // · weight
              if (view === 'unrotated') {
                route.push(n1);
                out.push(await rope(eng, n1, rows.cos, rows.sin));
              } else {
                if (view === 'spatial') route.push(await rope(eng, n1, st.routeCos!, st.routeSin!)); // y, x only
                out.push(await rope(eng, n1, rows.cos, rows.sin, n1)); //                      rotated in place
              }
              free(g, n0);
            } else out.push(g);
          }
          qkv.dispose();
          return [...out, ...route];
        });
        await inspect(`${b}attn.q`, q);
        await inspect(`${b}attn.k`, k);
        await inspect(`${b}attn.v`, v);
        if (qr && kr) {
          await inspect(`${b}attn.q_route`, qr);
          await inspect(`${b}attn.k_route`, kr);
        }

        const o = cached //                                                                 [H, N, D]
          ? await this.attendCached(cached.layout, cached.cache.layers[i], cached.cache.routed, q, k, v, opts, phase)
          : await this.attend(st, { q, k, v, qr: qr ?? q, kr: kr ?? k }, i, opts, pending, phase, inspect);
        await inspect(`${b}attn.o`, o);

        await phase('other', async () => {
          const oRows = o.view([H * N, D]);
          // video: xv += gate1 · out_video(o); xv += gate2 · mlp(modulate(LN(xv)))
          const ov = await gatherRows(eng, oRows, rows.mergeVideo, { shape: [Nv, d] }); //   [Nv, d] = [Nv, H, D]
          const av = await this.linear(ov, `${b}attn.out_video`);
          await gatedResidual(eng, xv, { table: modV, chunk: 2 }, av, rows.condVideo, xv);
          free(ov, av);
          await this.mlp(xv, modV, rows.condVideo, `${b}mlp_video`);
          if (!last) {
            const ot = await gatherRows(eng, oRows, rows.mergeText, { shape: [Nt, d] }); // [Nt, d]
            const at = await this.linear(ot, `${b}attn.out_text`);
            await gatedResidual(eng, xt, { table: modT, chunk: 2 }, at, rows.condText, xt);
            free(ot, at);
            await this.mlp(xt, modT, rows.condText, `${b}mlp_text`);
          }
        });
        free(q, k, v, o, modT, modV, ...(qr && kr ? [qr, kr] : []));
        await inspect(`${b}text`, xt);
        await inspect(`${b}video`, xv);
      }

      // final: proj(modulate(LN(xv), shift, scale)) → unpatchify                              [T, 3, Hi, Wi]
      const velocity = await phase('other', async () => {
        const modF = await this.linear(cs, 'final.mod'); //                                  [S+1, 2d]
        const l = await norm(eng, 'layer', xv);
        const hv = await modulate(eng, l, { table: modF, chunk: 0 }, { table: modF, chunk: 1 }, rows.condVideo);
        let out = await this.linear(hv, 'final.proj'); //                                    [Nv, P]
        free(modF, l, hv);
        if (cfg.prediction === 'x') {
          // out = x̂0 → v = (x_t − x̂0) / max(t, tMin), per token from its shot's t           [Nv, P]
          const diff = await binary(eng, 'sub', xPatches!, out);
          const scale = new Float32Array((S + 1) * cfg.patchDim); // row r: 1/max(t_r, tMin) − 1
          for (let r = 1; r <= S; r++)
            scale.fill(1 / Math.max(tShot[r - 1], cfg.tMin) - 1, r * cfg.patchDim, (r + 1) * cfg.patchDim);
          const scaleT = eng.upload(scale, [S + 1, cfg.patchDim], 'dit.inv-t');
          const zero = eng.upload(new Float32Array((S + 1) * cfg.patchDim), [S + 1, cfg.patchDim], 'dit.zero-shift');
          const v = await modulate(eng, diff, zero, scaleT, rows.condVideo);
          free(out, diff, scaleT, zero);
          out = v;
        }
        const img = cfg.imageSize;
        const vel = await unpatchify(eng, out, [Tr, cfg.channels, img, img], cfg.patchSize);
        free(out);
        if (!cached) return vel;
        const all = eng.tensor([T, cfg.channels, img, img], 'f32', 'dit.velocity'); //        prefix frames 0, then the suffix's
        eng.clear(all);
        eng.copy(vel, all, cached.layout.framesPrefix * cfg.channels * img * img);
        vel.dispose();
        return all;
      });
      try {
        return { velocity, traces: await this.readTraces(st, pending) };
      } catch (e) {
        velocity.dispose();
        throw e;
      }
    } finally {
      free(...temps);
      for (const p of pending) free(p.qMean, p.desc, ...(p.routes ? [p.routes] : []));
    }
  }

  /** x += gate2 · fc2(gelu(fc1(modulate(LN(x), shift2, scale2)))), chunks 3, 4, 5 of `mod`. */
  private async mlp(x: Tensor, mod: Tensor, cond: Tensor, name: string): Promise<void> {
    const eng = this.eng;
    const l = await norm(eng, 'layer', x);
    const h = await modulate(eng, l, { table: mod, chunk: 3 }, { table: mod, chunk: 4 }, cond);
    const f1 = await this.linear(h, `${name}.fc1`); //                                       [rows, h]
    const g = await unary(eng, 'gelu', f1);
    const f2 = await this.linear(g, `${name}.fc2`); //                                       [rows, d]
    await gatedResidual(eng, x, { table: mod, chunk: 5 }, f2, cond, x);
    for (const t of [l, h, f1, g, f2]) t.dispose();
  }

  /**
   * Joint attention over [text; video] in the request's mode, routing by qr, kr (the routing view;
   * q, k themselves for 'rotary'); when tracing, queues the layer's trace summaries in `pending`.
   */
  private async attend(
    st: SeqState,
    { q, k, v, qr, kr }: Record<'q' | 'k' | 'v' | 'qr' | 'kr', Tensor>,
    layer: number,
    opts: ForwardOptions,
    pending: PendingTrace[],
    phase: <R>(p: Phase, fn: () => Promise<R>) => Promise<R>,
    inspect: (name: string, t: Tensor) => Promise<void>,
  ): Promise<Tensor> {
    const { eng } = this;
    const table = st.seq.internal;
    let desc: Tensor | null = null; //                                                       [H, C, D]
    let routed: Tensor | null = null; //                                                     [H, N, K]
    let o: Tensor;
    if (opts.mode === 'moc') {
      routed = await phase('routing', async () => {
        desc = await chunkMean(eng, kr, st.chunkStart, st.chunkEnd);
        return mocRoute(
          eng,
          qr,
          desc,
          { start: st.chunkStart, kind: st.chunkKind, shot: st.chunkShot },
          { topK: opts.topK, causal: opts.causal },
        );
      });
      await inspect(`blocks.${layer}.routed`, routed);
      o = await phase('attention', () =>
        mocAttention(eng, q, k, v, table, routed, { design: opts.design, causalText: this.config.causalText }),
      );
    } else if (opts.mode === 'shot') {
      // no routed chunks: a −1 table as wide as moc's, so both modes share one compiled kernel
      const none = this.noRoutes(st, Math.max(1, Math.min(opts.topK, MAX_TOP_K)));
      o = await phase('attention', () => mocAttention(eng, q, k, v, st.shotTable, none, { design: opts.design }));
    } else {
      o = await phase('attention', () => flashAttention(eng, q, k, v));
    }
    try {
      if (opts.trace) {
        // summaries on the GPU, in stream order, read back after the whole forward pass (readTraces):
        // the score factors φ(Q), φ(K) [H, C, D] of the routing view (chunk means over the stream-ordered ranges) and
        // the routed pairs
        const qMean = await chunkMean(eng, qr, st.streamStart, st.streamEnd);
        const descStream = await chunkMean(eng, kr, st.streamStart, st.streamEnd);
        let routes: Tensor | null = null;
        if (routed) {
          checkRouteCounts(table);
          routes = await traceCounts(eng, routed, st.chunkStart, st.chunkEnd, st.toStream);
        }
        pending.push({
          qMean,
          desc: descStream,
          routes,
          table: opts.mode === 'shot' ? st.shotStream : st.seq.stream,
          mode: opts.mode === 'dense' ? 'dense' : 'moc',
        });
      }
    } finally {
      (desc as Tensor | null)?.dispose();
      routed?.dispose();
    }
    return o;
  }

  /**
   * Attention of the suffix rows q, k, v [H, Ns, D] over the cached prefix and themselves: the
   * layer's kv and desc buffers take this step's suffix rows, full [H, N, D] q, k, v (q's prefix
   * rows are placeholders) and descriptors [H, C, D] are gathered from them, and routing and
   * attention compute only the queries from token Np on. Returns o [H, N, D] (suffix rows valid).
   */
  private async attendCached(
    lay: PrefixLayout,
    layer: { kv: Tensor; desc: Tensor },
    routedBuf: Tensor,
    q: Tensor,
    k: Tensor,
    v: Tensor,
    opts: ForwardOptions,
    phase: <R>(p: Phase, fn: () => Promise<R>) => Promise<R>,
  ): Promise<Tensor> {
    const { eng } = this;
    const { heads: H, headDim: D } = this.config;
    const { n: N, nPrefix: Np, nSuffix: Ns, cPrefix: Cp } = lay;
    const C = lay.table.start.length;
    eng.copy(k, layer.kv, 2 * H * Np * D);
    eng.copy(v, layer.kv, (2 * H * Np + H * Ns) * D);
    const [qf, kf, vf] = await phase('other', async () => {
      const kvRows = layer.kv.view([2 * H * N, D]);
      return [
        await gatherRows(eng, q.view([H * Ns, D]), lay.qMap, { shape: [H, N, D] }), //        [H, N, D]
        await gatherRows(eng, kvRows, lay.kMap, { shape: [H, N, D] }),
        await gatherRows(eng, kvRows, lay.vMap, { shape: [H, N, D] }),
      ];
    });
    try {
      const routed = await phase('routing', async () => {
        const ds = await chunkMean(eng, kf, lay.suffixStart, lay.suffixEnd); //                [H, Cs, D]
        eng.copy(ds, layer.desc, H * Cp * D);
        ds.dispose();
        const desc = await gatherRows(eng, layer.desc.view([H * C, D]), lay.descMap, { shape: [H, C, D] });
        const r = await mocRoute(
          eng,
          qf,
          desc,
          { start: lay.chunkStart, kind: lay.chunkKind, shot: lay.chunkShot },
          { topK: opts.topK, causal: true, queryStart: Np },
          routedBuf,
        );
        desc.dispose();
        return r;
      });
      return await phase('attention', () =>
        mocAttention(eng, qf, kf, vf, lay.table, routed, { design: opts.design, causalText: true, queryStart: Np }),
      );
    } finally {
      for (const t of [qf, kf, vf]) t.dispose();
    }
  }

  /**
   * Fills a PrefixCache for `lay`: one forward pass over the prefix alone (its shots at t = 0,
   * frames from x's first Tp frames, text from the first (P+1)·L rows of `text`), keeping every
   * layer's keys, values and chunk descriptors.
   */
  async fillPrefix(
    lay: PrefixLayout,
    x: Tensor,
    text: Float32Array,
    frames: readonly number[],
    chunkFrames: number,
    opts: Pick<ForwardOptions, 'topK' | 'design' | 'timer'>,
  ): Promise<PrefixCache> {
    const { eng, config: cfg } = this;
    const { heads: H, headDim: D, depth, dim: d } = cfg;
    const { n: N, nPrefix: Np, first: P } = lay;
    const C = lay.table.start.length;
    const layers = Array.from({ length: depth }, (_, i) => ({
      kv: eng.tensor([2 * H * N, D], 'f32', `dit.prefix.kv.${i}`),
      desc: eng.tensor([H * C, D], 'f32', `dit.prefix.desc.${i}`),
    }));
    if (!(opts.topK >= 1)) throw new UnsupportedError('fillPrefix: a cached prefix needs top_k ≥ 1');
    const routed = eng.upload(new Int32Array(H * N * opts.topK).fill(-1), [H, N, opts.topK], 'dit.prefix.routed');
    const pre = frames.slice(0, P);
    const st = this.state(pre, chunkFrames);
    const img = cfg.imageSize;
    const xp = prefix(x, [lay.framesPrefix, cfg.channels, img, img]);
    const inspect = async (name: string, t: Tensor): Promise<void> => {
      const m = /^blocks\.(\d+)\.attn\.([kv])$/.exec(name);
      if (!m) return;
      const l = layers[Number(m[1])];
      if (m[2] === 'v') return eng.copy(t, l.kv, H * Np * D);
      eng.copy(t, l.kv, 0);
      const dp = await chunkMean(eng, t, st.chunkStart, st.chunkEnd); //                     [H, Cp, D]
      eng.copy(dp, l.desc, 0);
      dp.dispose();
    };
    try {
      const r = await this.forward(
        xp,
        new Float32Array(P),
        text.subarray(0, (P + 1) * cfg.textLen * d),
        pre,
        chunkFrames,
        { mode: 'moc', topK: opts.topK, causal: true, design: opts.design, timer: opts.timer, inspect },
      );
      r.velocity.dispose();
    } catch (e) {
      for (const l of layers) [l.kv, l.desc].forEach((t) => t.dispose());
      routed.dispose();
      throw e;
    }
    return { layers, routed };
  }

  /**
   * The traces of the pending layers, read back in two waits: every layer's score factors and
   * its count of route words, then exactly those route words.
   */
  private async readTraces(st: SeqState, pending: PendingTrace[]): Promise<LayerTrace[]> {
    const { eng } = this;
    const { heads: H, headDim: D } = this.config;
    const C = st.seq.stream.start.length;
    const first = await Promise.all(
      pending.map((p) =>
        Promise.all([eng.read(p.qMean), eng.read(p.desc), p.routes ? eng.read(prefix(p.routes, [1])) : null]),
      ),
    );
    const words = await Promise.all(
      pending.map((p, i) => (p.routes ? eng.read(prefix(p.routes, [1 + first[i][2]![0]])) : null)),
    );
    return pending.map((p, i) => {
      const [qMean, desc] = first[i] as [Float32Array, Float32Array, unknown];
      const routes = words[i] ? decodeRoutes(words[i] as Uint32Array, H, C) : emptyRoutes(H, C);
      return traceOf(routes, qMean, desc, { H, N: st.seq.n, D }, p.table, p.mode, this.config.causalText);
    });
  }

  /** An all −1 routed table [H, N, W] for this sequence (cached). */
  private noRoutes(st: SeqState, W: number): Tensor {
    const { heads: H } = this.config;
    if (st.noRoutes?.shape[2] !== W) {
      st.noRoutes?.dispose();
      st.noRoutes = this.eng.upload(new Int32Array(H * st.seq.n * W).fill(-1), [H, st.seq.n, W], 'dit.seq.no-routes');
    }
    return st.noRoutes;
  }

  /** Frees every GPU tensor this model holds. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.shotCache.clear();
    for (const t of this.w.values()) t.dispose();
    for (const t of this.qkNorm) t.dispose();
    this.normShift?.dispose();
    for (const st of this.seqs.values()) disposeState(st);
    this.seqs.clear();
  }
}
