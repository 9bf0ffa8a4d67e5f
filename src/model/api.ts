/**
 * The generation contract between src/model (the DiT, the sampler), src/worker (exposes it) and
 * the UI (calls it through the worker). Plain, structured-cloneable data only.
 *
 * Legend: S shots, F frames of a shot, Hi×Wi frame size, L caption tokens, C chunks, H heads.
 */
import type { RouteView, TrainFrames } from './config.ts';
import type { Storyboard } from './storyboard.ts';
import type { ChunkTable } from './layout.ts';
import type { RouteRows } from '../engine/kernels/trace.ts';

/** One entry of public/models/index.json. */
export interface ModelEntry {
  name: string;
  /** URL or path of the model folder relative to public/ (holds config.json, vocab.json, model.safetensors, manifest.json). */
  path: string;
  description: string;
  params: number;
  bytes: number;
  default?: boolean;
}

/** Summary of a loaded model for the UI. */
export interface ModelInfo {
  name: string;
  imageSize: number;
  patchSize: number;
  dim: number;
  depth: number;
  heads: number;
  textLen: number;
  fps: number;
  /** Frames per shot it was trained on (config.json `train_frames`, or a min–max range), null when not recorded. */
  trainFrames: TrainFrames | null;
  /** The view of q, k routing scores with (config.json `route_view`; MOC.md §3b). */
  routeView: RouteView;
  /**
   * Trained context-causal (config.json `causal_text`): with causal MoC routing no information
   * flows from a later shot to an earlier one, and kept earlier shots are cached.
   */
  causalText: boolean;
  /** The vocabulary (for marking unknown caption words and offering suggestions). */
  words: string[];
  /** How the model's tokenizer splits a caption (vocab.json), so the page counts and marks words the same way. */
  captionRules: CaptionRules;
}

/** vocab.json's caption rules: lower-case first or not, then the words are the matches of `split` (a regex source, flags `gu`). */
export interface CaptionRules {
  split: string;
  lowercase: boolean;
}

/**
 * What loading a model tells the UI: its summary and the attention it was trained with
 * (config.json's top_k, chunk_frames and causal, with MoC routing), where the generation
 * panel starts for this model.
 */
export interface LoadedModelInfo extends ModelInfo {
  attention: AttentionOptions;
}

/** The attention modes (messages list them in this order: "moc, dense or shot"). */
export const ATTENTION_MODES = ['moc', 'dense', 'shot'] as const;
export type AttentionMode = (typeof ATTENTION_MODES)[number];

export function isAttentionMode(v: unknown): v is AttentionMode {
  return (ATTENTION_MODES as readonly unknown[]).includes(v);
}

export interface AttentionOptions {
  mode: AttentionMode;
  topK: number;
  chunkFrames: number;
  causal: boolean;
}

export interface GenerateRequest {
  storyboard: Storyboard;
  steps: number;
  guidance: number;
  attention: AttentionOptions;
  /**
   * Shots held fixed as clean context (LCT): index → frames RGBA [F, Hi, Wi, 4] from an earlier
   * generation. Only shots not listed here are sampled. Used by "regenerate one shot" (every
   * other shot kept) and "append a shot" (every earlier shot kept).
   */
  keep?: { shot: number; frames: Uint8ClampedArray }[];
  /** Send preview frames every this many steps (0: never). */
  previewEvery?: number;
  /** Collect a routing trace every this many steps (0: never; the last step is always traced). */
  traceEvery?: number;
  /**
   * Split every step's time into attention / routing / the rest (StepTimings). Costs time:
   * with timestamp queries each kernel gets a compute pass of its own, without them the GPU is
   * waited for around every phase. Off: steps report wall time only.
   */
  profile?: boolean;
}

/**
 * The routing trace of one attention call (one layer), chunks in stream order (MOC.md §3). Small
 * on purpose, as it is read back from the GPU every traced step: the mean routing scores are a
 * rank-D product, so the trace keeps their two factors [H, C, D] instead of the [H, C, C] matrix,
 * and the route counts keep only the (a, b) pairs that were routed. Read scores and counts with
 * src/viz/dag-layout.ts's meanScore / addScores / addRoutes.
 */
export interface LayerTrace {
  H: number;
  C: number;
  D: number;
  /** Query tokens of chunk a that routed to chunk b (head h), by rows h·C + a (RouteRows). */
  routes: RouteRows;
  /** mandatory[a, b] = 1 when chunk b is mandatory for the queries of chunk a. [C, C] */
  mandatory: Uint8Array;
  /** φ_h(Q_a): the mean query of chunk a per head. [H, C, D] */
  qMean: Float32Array;
  /** φ_h(K_b): the key descriptor (mean key) of chunk b per head, as routing scores it. [H, C, D] */
  desc: Float32Array;
  /** Sparsity per head: 1 − Σ_i |Ω_h(i)| / N². [H] */
  sparsity: Float32Array;
}

/** Routing of one sampler step: one trace per layer. */
export interface StepTrace {
  step: number;
  /** Chunk table of the sequence (stream order), shared by all layers. */
  chunks: ChunkTable;
  layers: LayerTrace[];
}

export interface StepTimings {
  /** Wall ms of this step (recording, GPU work and waiting). */
  total: number;
  /**
   * Profiled steps only (`GenerateRequest.profile`): ms per phase — GPU time from timestamp
   * queries, or wall time around synced phases where the adapter has none.
   */
  attention?: number;
  routing?: number;
  other?: number;
  /** Kernel dispatches recorded in this step (host work: each costs an encoder call or a few). */
  dispatches: number;
}

export interface GenerateProgress {
  step: number;
  steps: number;
  /** ms since the request started. */
  elapsedMs: number;
  timings?: StepTimings;
  /** Current estimate of the clean video, per sampled shot: RGBA [F, Hi, Wi, 4]. */
  previews?: { shot: number; frames: Uint8ClampedArray }[];
  trace?: StepTrace;
}

export interface GeneratedShot {
  shot: number;
  frames: Uint8ClampedArray; // RGBA [F, Hi, Wi, 4]
  width: number;
  height: number;
  seed: number;
}

export interface GenerateResult {
  shots: GeneratedShot[];
  /** Traces collected during the run (last step always included). */
  traces: StepTrace[];
  /** Per step. */
  timings: StepTimings[];
  totalMs: number;
  /** Attention FLOPs actually spent vs dense, summed over steps and layers. */
  attentionFlops: { visited: number; dense: number };
  sparsity: number;
  /**
   * Shots 1..keptShots (1-based) came from the kept-shot cache (a causal-text model): their keys
   * and values were computed once for this run (`reused` false) or taken from the previous run
   * (`reused` true), and each untraced step ran only the later shots. `summary` says so in words.
   * Absent: no cache.
   */
  cache?: { keptShots: number; reused: boolean; summary: string };
}

/** What a run took from the kept-shot cache, in words ("kept shots 1–31 from cache (…)"). */
export function cacheSummary(keptShots: number, reused: boolean): string {
  const shots = keptShots === 1 ? 'shot 1' : `shots 1–${keptShots}`;
  return `kept ${shots} from cache (${reused ? 'reused from the previous run' : 'computed once for this run'})`;
}
