/**
 * Generation: a storyboard in, RGBA frames per shot out, through the contract of api.ts
 * (GenerateRequest → GenerateProgress* → GenerateResult). One `Generator` holds a loaded model
 * on an engine and serves any number of requests, one at a time; a request cancelled through
 * its AbortSignal releases its GPU memory and leaves the generator usable.
 *
 * Noise is the engine's seeded Rng per shot seed (mulberry32 + Box–Muller; PyTorch's generator
 * cannot be reproduced here), so a storyboard gives the same video in every host.
 *
 * Legend: S shots, F frames of a shot, T frames, Hi×Wi frame size, C chunks, H heads, N tokens.
 */
import type { Engine } from '../engine/engine.ts';
import { Rng } from '../engine/random.ts';
import {
  cacheSummary,
  isAttentionMode,
  type AttentionOptions,
  type GeneratedShot,
  type GenerateProgress,
  type GenerateRequest,
  type GenerateResult,
  type ModelInfo,
  type StepTimings,
  type StepTrace,
} from './api.ts';
import type { ModelConfig } from './config.ts';
import { MocDiT, type Phase, type PhaseTimer } from './dit.ts';
import { memoryProblem } from './memory.ts';
import { isCandidate, isMandatory } from './moc-reference.ts';
import { cleanEstimate, sample, throwIfAborted } from './sampler.ts';
import { shotOnlyTable, type Sequence } from './sequence.ts';
import { InputError } from './errors.ts';
import { parseStoryboard, type Storyboard } from './storyboard.ts';
import { MAX_TOP_K } from '../engine/kernels/moc-route.ts';
import type { LoadedModel } from './weights.ts';

/** A request that cannot run (bad options or keep frames); storyboard problems are StoryboardError. */
export class RequestError extends InputError {
  constructor(message: string) {
    super(message);
    this.name = 'RequestError';
  }
}

/**
 * The network's output overflowed (NaN or ±∞ in the frames): damaged weights, or inputs that
 * overflow float32. Refused rather than turned into black frames.
 */
export class OverflowError extends InputError {
  constructor(message: string) {
    super(message);
    this.name = 'OverflowError';
  }
}

/** @throws OverflowError at the first non-finite value of the frames [T, 3, Hi, Wi] (naming its shot). */
export function checkFiniteFrames(x: Float32Array, frames: readonly number[], size: number): void {
  const per = 3 * size * size;
  for (let i = 0; i < x.length; i++) {
    if (!Number.isFinite(x[i])) {
      let f = Math.floor(i / per);
      const shot = frames.findIndex((n) => (f -= n) < 0);
      throw new OverflowError(
        `the generated frames of shot ${shot + 1} hold ${x[i]} values: the computation overflowed float32 (damaged weights?); no frames were made`,
      );
    }
  }
}

/** RGBA u8 [F, Hi, Wi, 4] → channels-first floats in [−1, 1] [F, 3, Hi, Wi] (train/data.py). */
export function rgbaToFrames(rgba: ArrayLike<number>, frames: number, size: number): Float32Array {
  const px = size * size;
  const out = new Float32Array(frames * 3 * px);
  for (let f = 0; f < frames; f++) {
    for (let c = 0; c < 3; c++)
      for (let p = 0; p < px; p++) out[(f * 3 + c) * px + p] = rgba[(f * px + p) * 4 + c] / 127.5 - 1;
  }
  return out;
}

/** Frames [F, 3, Hi, Wi] in [−1, 1] → RGBA u8 (round((clamp(x) + 1)·127.5), alpha 255). */
export function framesToRgba(x: Float32Array, frames: number, size: number, offset = 0): Uint8ClampedArray {
  const px = size * size;
  const out = new Uint8ClampedArray(frames * px * 4);
  for (let f = 0; f < frames; f++) {
    for (let p = 0; p < px; p++) {
      for (let c = 0; c < 3; c++) {
        const v = Math.min(1, Math.max(-1, x[offset + (f * 3 + c) * px + p]));
        out[(f * px + p) * 4 + c] = Math.round((v + 1) * 127.5);
      }
      out[(f * px + p) * 4 + 3] = 255;
    }
  }
  return out;
}

/** Seeded noise of every shot [T, 3, Hi, Wi]: shot s from Rng(seed_s). */
export function shotNoise(frames: readonly number[], seeds: readonly number[], size: number): Float32Array {
  const per = 3 * size * size;
  const out = new Float32Array(frames.reduce((a, b) => a + b, 0) * per);
  let at = 0;
  frames.forEach((f, s) => {
    out.set(new Rng(seeds[s]).normals(f * per), at);
    at += f * per;
  });
  return out;
}

/**
 * Query–key pairs per head one model call visits (MOC.md sparsity), and routing candidates
 * scored, for a mode, before routing: routed chunks are counted as min(K, #candidates) chunks of
 * the candidates' mean length (a traced layer's sparsity gives the exact pairs).
 */
export function attentionWork(
  seq: Sequence,
  opts: AttentionOptions,
  causalText = false,
): { pairs: number; candidates: number } {
  const t = opts.mode === 'shot' ? shotOnlyTable(seq.internal) : seq.internal;
  const C = t.start.length;
  const len = (c: number): number => t.end[c] - t.start[c];
  if (opts.mode === 'dense') return { pairs: seq.n * seq.n, candidates: 0 };
  let pairs = 0;
  let candidates = 0;
  for (let a = 0; a < C; a++) {
    let mand = 0;
    let nc = 0;
    let cl = 0;
    for (let b = 0; b < C; b++) {
      if (isMandatory(t, a, b, causalText && opts.mode === 'moc')) mand += len(b);
      else if (opts.mode === 'moc' && isCandidate(t, a, b, opts.causal)) {
        nc++;
        cl += len(b);
      }
    }
    const routed = nc ? Math.min(opts.topK, nc) * (cl / nc) : 0;
    pairs += len(a) * (mand + routed);
    candidates += len(a) * nc;
  }
  return { pairs, candidates };
}

/** Phase times from GPU timestamps (profiler labels) or, without them, from wall time around synced phases. */
class StepTimer implements PhaseTimer {
  readonly ms: Record<Phase, number> = { attention: 0, routing: 0, other: 0 };

  constructor(private readonly eng: Engine) {}

  async run<R>(phase: Phase, fn: () => Promise<R>): Promise<R> {
    if (phase === 'other' || this.eng.profiler.enabled) return fn();
    await this.eng.sync();
    const t0 = performance.now();
    const r = await fn();
    await this.eng.sync();
    this.ms[phase] += performance.now() - t0;
    return r;
  }
}

const ROUTING_LABELS = new Set(['chunk-mean', 'moc-route']);

function phaseOf(label: string): Phase {
  if (ROUTING_LABELS.has(label)) return 'routing';
  return label.startsWith('flash-attention') || label.startsWith('moc-attention') || label.startsWith('moc-group')
    ? 'attention'
    : 'other';
}

/**
 * Validates a request against a model without touching the GPU: the storyboard (StoryboardError),
 * the options and keep frames (RequestError) and every caption (CaptionError: unknown words or
 * too many tokens). Returns the storyboard as parsed and the caption ids [S+1, L].
 */
export function prepareRequest(model: LoadedModel, req: GenerateRequest): { storyboard: Storyboard; text: Int32Array } {
  const board = parseStoryboard(req.storyboard);
  const bad = (msg: string): never => {
    throw new RequestError(msg);
  };
  if (!Number.isInteger(req.steps) || req.steps < 1 || req.steps > 1000)
    bad(`steps must be an integer in 1..1000, got ${req.steps}`);
  if (!Number.isFinite(req.guidance)) bad(`guidance must be a finite number, got ${req.guidance}`);
  const a = req.attention;
  if (!isAttentionMode(a.mode)) bad(`attention mode must be moc, dense or shot, got ${JSON.stringify(a.mode)}`);
  if (!Number.isInteger(a.topK) || a.topK < 0 || a.topK > MAX_TOP_K)
    bad(`top-k must be an integer in 0..${MAX_TOP_K}, got ${a.topK}`);
  if (!Number.isInteger(a.chunkFrames) || a.chunkFrames < 1)
    bad(`chunk frames must be an integer ≥ 1, got ${a.chunkFrames}`);
  const size = model.config.imageSize;
  const seen = new Set<number>();
  for (const k of req.keep ?? []) {
    const shot = board.shots[k.shot];
    if (!shot) bad(`keep: shot ${k.shot} is not in the storyboard (${board.shots.length} shots)`);
    if (seen.has(k.shot)) bad(`keep: shot ${k.shot} is listed twice`);
    seen.add(k.shot);
    const want = shot.frames * size * size * 4;
    if (k.frames.length !== want)
      bad(`keep: shot ${k.shot} has ${k.frames.length} bytes, expected ${shot.frames}×${size}×${size}×4 RGBA`);
  }
  if (seen.size === board.shots.length) bad('keep: every shot is kept, nothing to generate');
  const L = model.config.textLen;
  const tok = model.tokenizer;
  const text = new Int32Array((board.shots.length + 1) * L);
  text.set(tok.encodeStrict(board.globalCaption, L, 'storyboard.globalCaption'), 0);
  board.shots.forEach((s, i) =>
    text.set(tok.encodeStrict(s.caption, L, `storyboard.shots[${i}].caption`), (i + 1) * L),
  );
  return { storyboard: board, text };
}

export class Generator {
  readonly info: ModelInfo;
  private busy = false;

  private constructor(
    readonly eng: Engine,
    readonly dit: MocDiT,
    readonly model: LoadedModel,
  ) {
    const c = model.config;
    this.info = {
      name: c.name,
      imageSize: c.imageSize,
      patchSize: c.patchSize,
      dim: c.dim,
      depth: c.depth,
      heads: c.heads,
      textLen: c.textLen,
      fps: c.fps,
      trainFrames: c.trainFrames,
      routeView: c.routeView,
      causalText: c.causalText,
      words: [...model.tokenizer.words],
      captionRules: { split: model.tokenizer.splitPattern, lowercase: model.tokenizer.lowercase },
    };
  }

  /**
   * Uploads the model to the engine.
   * @throws UnsupportedError when the attention kernels cannot run its head dim.
   */
  static create(eng: Engine, model: LoadedModel): Generator {
    return new Generator(eng, MocDiT.create(eng, model), model);
  }

  get config(): ModelConfig {
    return this.model.config;
  }

  /** Default attention options of this model. */
  defaultAttention(): AttentionOptions {
    const c = this.model.config;
    return { mode: 'moc', topK: c.topK, chunkFrames: c.chunkFrames, causal: c.causal };
  }

  /**
   * Generates the storyboard's video.
   * @param onProgress called after every step (previews and traces as the request asks).
   * @param signal cancels between model calls; the promise rejects with its reason (AbortError).
   * @param noise optional starting noise [T, 3, Hi, Wi] instead of the shots' seeded noise (tests).
   * @throws StoryboardError, CaptionError, RequestError for bad input (one line each).
   */
  async generate(
    req: GenerateRequest,
    onProgress?: (p: GenerateProgress) => void,
    signal?: AbortSignal,
    noise?: Float32Array,
  ): Promise<GenerateResult> {
    if (this.busy) throw new RequestError('this generator is already running a request');
    const { storyboard: board, text } = prepareRequest(this.model, req);
    this.checkMemory(board, req);
    throwIfAborted(signal);
    this.busy = true;
    try {
      return await this.run({ ...req, storyboard: board }, text, onProgress, signal, noise);
    } finally {
      this.busy = false;
    }
  }

  /**
   * Refuses a request whose buffers will not fit this GPU (memory.ts), before anything is allocated.
   * @throws RequestError saying what to change (fewer frames, MoC instead of dense, larger chunks, …).
   */
  private checkMemory(board: Storyboard, req: GenerateRequest): void {
    let weightBytes = 0;
    for (const w of this.model.weights.values()) weightBytes += w.data.length * 4;
    const plan = { frames: board.shots.map((s) => s.frames), attention: req.attention, weightBytes, traced: true };
    const problem = memoryProblem(this.model.config, plan, this.eng.adapter.limits);
    if (problem) throw new RequestError(problem);
  }

  private async run(
    req: GenerateRequest,
    text: Int32Array,
    onProgress: ((p: GenerateProgress) => void) | undefined,
    signal: AbortSignal | undefined,
    noise?: Float32Array,
  ): Promise<GenerateResult> {
    const { eng } = this;
    const cfg = this.model.config;
    const size = cfg.imageSize;
    const board = req.storyboard;
    const frames = board.shots.map((s) => s.frames);
    const T = frames.reduce((a, b) => a + b, 0);
    const per = 3 * size * size;
    const start = performance.now();
    const fixed = board.shots.map((_, s) => (req.keep ?? []).some((k) => k.shot === s));
    const keepFrames = new Float32Array(T * per);
    let at = 0;
    board.shots.forEach((s, i) => {
      const k = req.keep?.find((e) => e.shot === i);
      if (k) keepFrames.set(rgbaToFrames(k.frames, s.frames, size), at);
      at += s.frames * per;
    });
    const seq = this.dit.sequence(frames, req.attention.chunkFrames);
    const estimate = attentionWork(seq, req.attention, cfg.causalText);
    const { heads: H, headDim: D, depth } = cfg;
    const calls = req.guidance !== 1 ? 2 : 1;
    const traceEvery = req.traceEvery ?? 0;
    const previewEvery = req.previewEvery ?? 0;
    const traces: StepTrace[] = [];
    const timings: StepTimings[] = [];
    const flops = { visited: 0, dense: 0 };
    let pairSum = 0;
    let timer = new StepTimer(eng);
    let stepStart = 0;
    let dispatches0 = 0;
    let progress: GenerateProgress = { step: 0, steps: req.steps, elapsedMs: 0 };
    let cache: GenerateResult['cache'];
    const x = await sample(
      this.dit,
      {
        text,
        frames,
        noise:
          noise ??
          shotNoise(
            frames,
            board.shots.map((s) => s.seed),
            size,
          ),
        keep: { shots: fixed, frames: keepFrames },
      },
      {
        steps: req.steps,
        guidance: req.guidance,
        attention: req.attention,
        signal,
        onCache: (u) => (cache = { keptShots: u.keptShots, reused: u.hit, summary: cacheSummary(u.keptShots, u.hit) }),
        traceStep: (step) => step === req.steps || (traceEvery > 0 && step % traceEvery === 0),
        timer: () => {
          timer = new StepTimer(eng);
          stepStart = performance.now();
          dispatches0 = eng.stats.dispatches;
          if (!req.profile) return undefined;
          if (eng.features.timestamp) eng.profiler.start();
          return timer;
        },
        onStep: async (info) => {
          for (let c = 0; c < calls; c++) {
            for (let l = 0; l < depth; l++) {
              // a traced layer's measured sparsity replaces the estimate's pairs (candidates do not depend on routing)
              const tr = c === 0 ? info.traces[l] : undefined;
              const w = tr
                ? {
                    pairs: (1 - tr.sparsity.reduce((a, b) => a + b, 0) / tr.H) * seq.n * seq.n,
                    candidates: estimate.candidates,
                  }
                : estimate;
              flops.visited += H * (4 * D * w.pairs + 2 * D * w.candidates);
              flops.dense += H * 4 * D * seq.n * seq.n;
              pairSum += w.pairs / (seq.n * seq.n);
            }
          }
          progress = { step: info.step, steps: req.steps, elapsedMs: 0 };
          if (info.traces.length) {
            const st: StepTrace = { step: info.step, chunks: seq.stream, layers: info.traces };
            traces.push(st);
            progress.trace = st;
          }
          if (previewEvery > 0 && info.step % previewEvery === 0 && info.step < req.steps) {
            const est = await cleanEstimate(eng, info.x, info.velocity, info.tNow, seq.frameShot, fixed);
            const data = (await eng.read(est)) as Float32Array;
            est.dispose();
            progress.previews = this.shots(data, frames, fixed, false).map(({ shot, frames: f }) => ({
              shot,
              frames: f,
            }));
          }
        },
        onStepDone: async () => {
          await eng.sync();
          const t: StepTimings = {
            total: performance.now() - stepStart,
            dispatches: eng.stats.dispatches - dispatches0,
          };
          if (req.profile && eng.profiler.enabled) {
            // GPU timestamps per kernel, summed by phase
            const gpu: Record<Phase, number> = { attention: 0, routing: 0, other: 0 };
            for (const [label, ms] of await eng.profiler.resolve()) gpu[phaseOf(label)] += ms;
            Object.assign(t, gpu);
          } else if (req.profile) {
            // wall time around synced phases (StepTimer); the rest is the step's remainder
            const { attention, routing } = timer.ms;
            Object.assign(t, { attention, routing, other: Math.max(0, t.total - attention - routing) });
          }
          timings.push(t);
          onProgress?.({ ...progress, elapsedMs: performance.now() - start, timings: t });
        },
      },
    ).finally(async () => {
      if (eng.profiler.enabled) await eng.profiler.resolve().catch(() => undefined);
    });
    try {
      const data = (await eng.read(x)) as Float32Array;
      checkFiniteFrames(data, frames, size);
      const shots = this.shots(data, frames, fixed, true).map((s) => ({ ...s, seed: board.shots[s.shot].seed }));
      const nCalls = req.steps * calls * depth;
      return {
        shots,
        traces,
        timings,
        totalMs: performance.now() - start,
        attentionFlops: flops,
        sparsity: nCalls ? 1 - pairSum / nCalls : 0,
        ...(cache ? { cache } : {}),
      };
    } finally {
      x.dispose();
    }
  }

  /** Frames [T, 3, Hi, Wi] → one RGBA shot per (sampled, or every) shot. */
  private shots(x: Float32Array, frames: readonly number[], fixed: readonly boolean[], all: boolean): GeneratedShot[] {
    const size = this.model.config.imageSize;
    const per = 3 * size * size;
    const out: GeneratedShot[] = [];
    let at = 0;
    frames.forEach((f, s) => {
      if (all || !fixed[s])
        out.push({ shot: s, frames: framesToRgba(x, f, size, at), width: size, height: size, seed: 0 });
      at += f * per;
    });
    return out;
  }

  dispose(): void {
    this.dit.dispose();
  }
}
