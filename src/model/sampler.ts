/**
 * Rectified-flow Euler sampler with classifier-free guidance and per-shot timesteps
 * (train/sample.py, in TS). Shots marked fixed stay at their clean frames with t = 0 and act as
 * context (LCT); the others are integrated from noise at t = 1 down to t = 0:
 *     v = v_null + guidance · (v_text − v_null),   x ← x − (t_now − t_next) · v
 * The null condition is every caption all `<pad>` (what caption dropout trains).
 *
 * Legend: S shots, T frames, Hi×Wi frame size, L caption tokens. Frames are [T, 3, Hi, Wi] f32.
 */
import type { Engine } from '../engine/engine.ts';
import { binary } from '../engine/kernels/elementwise.ts';
import { gatedResidual } from '../engine/kernels/modulate.ts';
import type { Tensor } from '../engine/tensor.ts';
import type { AttentionOptions, LayerTrace } from './api.ts';
import type { MocDiT, PhaseTimer } from './dit.ts';
import type { MocDesign } from '../engine/kernels/moc-attention.ts';
import {
  buildPrefixLayout,
  contentHash,
  disposePrefixCache,
  disposePrefixLayout,
  prefixCacheBytes,
  type PrefixEntry,
} from './shot-cache.ts';

/** torch.linspace(1, 0, steps + 1) in f32 (its CPU kernel's formula), as train/sample.py's ts. */
export function timesteps(steps: number): Float32Array {
  const n = steps + 1;
  const out = new Float32Array(n);
  if (n === 1) {
    out[0] = 1;
    return out;
  }
  const f = Math.fround;
  const step = f(-1 / steps);
  const halfway = Math.floor(n / 2);
  for (let i = 0; i < n; i++) out[i] = i < halfway ? f(1 + f(step * i)) : f(0 - f(step * (n - i - 1)));
  return out;
}

export interface StepInfo {
  /** 1-based index of the step just taken. */
  step: number;
  tNow: number;
  tNext: number;
  /** x before the update and the guided velocity, [T, 3, Hi, Wi] (valid during the call). */
  x: Tensor;
  velocity: Tensor;
  /** Routing traces of the conditional model call, when this step was traced. */
  traces: LayerTrace[];
}

export interface SampleOptions {
  steps: number;
  guidance: number;
  attention: AttentionOptions;
  design?: MocDesign;
  /** Which steps (1-based) collect routing traces. */
  traceStep?: (step: number) => boolean;
  /** Called after each model evaluation of a step, before x is updated. */
  onStep?: (info: StepInfo) => Promise<void> | void;
  /** Called after x has been updated (its work recorded, not necessarily finished). */
  onStepDone?: (step: number) => Promise<void> | void;
  /** A timer per step (phases of its model calls). */
  timer?: (step: number) => PhaseTimer | undefined;
  signal?: AbortSignal;
  /**
   * The kept-shot cache (shot-cache.ts), used when the model is causalText (routing with q, k as
   * rotated: route_view 'rotary'), attention is causal
   * MoC with top-k ≥ 1 and shots before the first sampled one are kept: at most this many bytes
   * (0: off; default: no limit). Traced steps run the whole network.
   */
  cacheBytes?: number;
  /** Told once, before the first step, what the cache supplies. */
  onCache?: (info: CacheUse) => void;
}

/** What a generation took from the kept-shot cache. */
export interface CacheUse {
  /** Shots 0..keptShots−1 came from the cache (computed once for this generation, or reused). */
  keptShots: number;
  /** Reused from an earlier generation (same board before the first sampled shot). */
  hit: boolean;
  bytes: number;
}

export interface SampleInputs {
  /** Caption ids [S+1, L], global caption first. */
  text: Int32Array;
  /** Frames per shot [S]. */
  frames: readonly number[];
  /** Starting noise [T, 3, Hi, Wi]. */
  noise: Float32Array;
  /** Shots held fixed and their clean frames ([T, 3, Hi, Wi]; only the fixed shots' frames are read). */
  keep?: { shots: readonly boolean[]; frames: Float32Array };
}

/** Throws the signal's reason (an AbortError) when it is aborted. */
export function throwIfAborted(signal?: AbortSignal): void {
  if (signal?.aborted)
    throw signal.reason instanceof Error ? signal.reason : new DOMException('generation cancelled', 'AbortError');
}

/**
 * Runs the sampler; returns x at t = 0, [T, 3, Hi, Wi] (the caller disposes it).
 * @throws the AbortSignal's reason when cancelled (every GPU temporary is released first).
 */
export async function sample(dit: MocDiT, inputs: SampleInputs, opts: SampleOptions): Promise<Tensor> {
  const eng: Engine = dit.eng;
  const cfg = dit.config;
  const { frames } = inputs;
  const S = frames.length;
  const T = frames.reduce((a, b) => a + b, 0);
  const img = cfg.imageSize;
  const shape = [T, cfg.channels, img, img];
  const size = T * cfg.channels * img * img;
  if (inputs.noise.length !== size)
    throw new RangeError(`sample: noise has ${inputs.noise.length} values, expected [${shape.join(', ')}]`);
  if (inputs.text.length !== (S + 1) * cfg.textLen)
    throw new RangeError(`sample: text has ${inputs.text.length} ids, expected [${S + 1}, ${cfg.textLen}]`);
  const fixed = Array.from({ length: S }, (_, s) => Boolean(inputs.keep?.shots[s]));
  const seq = dit.sequence(frames, opts.attention.chunkFrames);
  const x0 = inputs.noise.slice();
  if (inputs.keep) {
    const per = cfg.channels * img * img;
    seq.frameShot.forEach((s, f) => {
      if (fixed[s]) x0.set(inputs.keep!.frames.subarray(f * per, (f + 1) * per), f * per);
    });
  }
  const textEmb = dit.textEmbedding(inputs.text);
  const nullEmb = dit.textEmbedding(new Int32Array(inputs.text.length)); // all <pad>
  // rows of [T·3·Hi, Wi] → shot, for the per-shot update x += gate[shot] · v
  const rowShot = new Int32Array(T * cfg.channels * img);
  seq.frameShot.forEach((s, f) => rowShot.fill(s, f * cfg.channels * img, (f + 1) * cfg.channels * img));
  const x = eng.upload(x0, shape, 'sampler.x');
  const rows = eng.upload(rowShot, [rowShot.length], 'sampler.row-shot');
  const g = eng.upload(new Float32Array([opts.guidance]), [1], 'sampler.guidance');
  const ts = timesteps(opts.steps);
  const fwd = {
    mode: opts.attention.mode,
    topK: opts.attention.topK,
    causal: opts.attention.causal,
    design: opts.design,
  };
  let ok = false;
  try {
    const kept = await keptPrefix(dit, inputs, opts, fixed, x0, x, textEmb, nullEmb);
    for (let i = 0; i < opts.steps; i++) {
      const step = i + 1;
      const [tNow, tNext] = [ts[i], ts[i + 1]];
      const tShot = fixed.map((f) => (f ? 0 : tNow));
      const timer = opts.timer?.(step);
      const trace = opts.traceStep?.(step) ?? false;
      throwIfAborted(opts.signal);
      const use = (c: PrefixEntry['cond'] | null) =>
        kept && c && !trace ? { cached: { layout: kept.layout, cache: c } } : {};
      const cond = await dit.forward(x, tShot, textEmb, frames, opts.attention.chunkFrames, {
        ...fwd,
        trace,
        timer,
        ...use(kept?.cond ?? null),
      });
      let v = cond.velocity;
      try {
        if (opts.guidance !== 1) {
          throwIfAborted(opts.signal);
          const nul = await dit.forward(x, tShot, nullEmb, frames, opts.attention.chunkFrames, {
            ...fwd,
            timer,
            ...use(kept?.uncond ?? null),
          });
          const run = <R>(fn: () => Promise<R>): Promise<R> => (timer ? timer.run('other', fn) : fn());
          v = await run(async () => {
            const d = await binary(eng, 'sub', cond.velocity, nul.velocity); //          v_text − v_null
            const gd = await binary(eng, 'mul', d, g);
            const out = await binary(eng, 'add', nul.velocity, gd); //                    v_null + g·(…)
            for (const t of [d, gd, nul.velocity, cond.velocity]) t.dispose();
            return out;
          });
        }
        await opts.onStep?.({ step, tNow, tNext, x, velocity: v, traces: cond.traces });
        const gate = new Float32Array(S * img);
        fixed.forEach((f, s) => gate.fill(f ? 0 : -(tNow - tNext), s * img, (s + 1) * img));
        const gt = eng.upload(gate, [S, img], 'sampler.gate');
        await gatedResidual(
          eng,
          x.view([rowShot.length, img]),
          gt,
          v.view([rowShot.length, img]),
          rows,
          x.view([rowShot.length, img]),
        );
        gt.dispose();
      } finally {
        v.dispose();
      }
      await opts.onStepDone?.(step);
    }
    ok = true;
    return x;
  } finally {
    rows.dispose();
    g.dispose();
    if (!ok) x.dispose();
  }
}

/**
 * The cached prefix for this generation, or null when the cache does not apply: taken from the
 * model's ShotCache when its key (the kept shots before the first sampled one: their frames,
 * captions and the options that shape them) matches, else filled now (one prefix-only forward
 * pass per conditioning) and stored in place of the previous one if it fits `cacheBytes`.
 */
async function keptPrefix(
  dit: MocDiT,
  inputs: SampleInputs,
  opts: SampleOptions,
  fixed: readonly boolean[],
  x0: Float32Array,
  x: Tensor,
  textEmb: Float32Array,
  nullEmb: Float32Array,
): Promise<PrefixEntry | null> {
  const cfg = dit.config;
  const a = opts.attention;
  const first = fixed.indexOf(false);
  if (
    !cfg.causalText ||
    cfg.routeView !== 'rotary' ||
    a.mode !== 'moc' ||
    !a.causal ||
    a.topK < 1 ||
    first < 1 ||
    opts.cacheBytes === 0
  )
    return null;
  const { frames } = inputs;
  const Tp = frames.slice(0, first).reduce((s, f) => s + f, 0);
  const per = cfg.channels * cfg.imageSize * cfg.imageSize;
  const guided = opts.guidance !== 1;
  // the whole board's shot lengths: the buffers span every token (the sampled shots' rows too)
  const key = [
    frames.join(','),
    first,
    a.chunkFrames,
    a.topK,
    opts.design ?? '',
    guided,
    contentHash([inputs.text.subarray(0, (first + 1) * cfg.textLen), x0.subarray(0, Tp * per)]),
  ].join('|');
  const hit = dit.shotCache.get(key);
  if (hit) {
    opts.onCache?.({ keptShots: first, hit: true, bytes: hit.bytes });
    return hit;
  }
  const layout = buildPrefixLayout(dit.eng, cfg, frames, a.chunkFrames, first);
  const bytes = (guided ? 2 : 1) * prefixCacheBytes(cfg, layout.n, layout.table.start.length, a.topK);
  if (opts.cacheBytes !== undefined && bytes > opts.cacheBytes) {
    disposePrefixLayout(layout);
    return null;
  }
  const fill = (emb: Float32Array) =>
    dit.fillPrefix(layout, x, emb, frames, a.chunkFrames, { topK: a.topK, design: opts.design });
  const cond = await fill(textEmb);
  let uncond: PrefixEntry['uncond'];
  try {
    uncond = guided ? await fill(nullEmb) : null;
  } catch (e) {
    disposePrefixCache(cond);
    disposePrefixLayout(layout);
    throw e;
  }
  await dit.eng.sync(); // the fill's GPU work done here, so the first step's time is its own
  const entry: PrefixEntry = { key, layout, cond, uncond, bytes };
  dit.shotCache.set(entry);
  opts.onCache?.({ keptShots: first, hit: false, bytes });
  return entry;
}

/**
 * The clean-video estimate x₀ = x_t − t·v of the sampled shots (fixed shots: x itself), for
 * previews. Returns a new tensor [T, 3, Hi, Wi].
 */
export async function cleanEstimate(
  eng: Engine,
  x: Tensor,
  v: Tensor,
  t: number,
  frameShot: Int32Array,
  fixed: readonly boolean[],
): Promise<Tensor> {
  const [T, c, img] = x.shape;
  const rowsN = T * c * img;
  const rowShot = new Int32Array(rowsN);
  frameShot.forEach((s, f) => rowShot.fill(s, f * c * img, (f + 1) * c * img));
  const gate = new Float32Array(fixed.length * img);
  fixed.forEach((f, s) => gate.fill(f ? 0 : -t, s * img, (s + 1) * img));
  const rows = eng.upload(rowShot, [rowsN], 'sampler.preview-rows');
  const gt = eng.upload(gate, [fixed.length, img], 'sampler.preview-gate');
  const out = eng.tensor(x.shape, 'f32', 'sampler.preview');
  await gatedResidual(eng, x.view([rowsN, img]), gt, v.view([rowsN, img]), rows, out.view([rowsN, img]));
  rows.dispose();
  gt.dispose();
  return out;
}
