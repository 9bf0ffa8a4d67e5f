/**
 * The worker contract: the one interface the engine worker exposes, and the plain data that
 * crosses the boundary. Types only — nothing here exists at run time, so every layer may
 * `import type` from it (the UI and the state layer may import nothing else from src/worker/
 * except client.ts).
 *
 * Everything passed or returned is structured-cloneable plain data (no classes, no GPU handles).
 * Failures reject with a `WorkerError` (see client.ts) whose `code` is one of `EngineErrorCode`.
 */
import type { AdapterSummary, EngineFeatures } from '../engine/engine.ts';
import type { GenerateProgress, GenerateRequest, GenerateResult, LoadedModelInfo } from '../model/api.ts';
import type { RouteView } from '../model/config.ts';
import type { Chunk } from '../model/layout.ts';
import type { Storyboard } from '../model/storyboard.ts';
import type { ENGINE_ERROR_CODES } from './errors.ts';

export type { AdapterSummary, EngineFeatures };
export type {
  AttentionMode,
  AttentionOptions,
  GenerateProgress,
  GenerateRequest,
  GenerateResult,
  GeneratedShot,
  LoadedModelInfo,
  ModelEntry,
  ModelInfo,
  StepTimings,
  StepTrace,
} from '../model/api.ts';
export type { Chunk, ChunkTable } from '../model/layout.ts';
export type { Shot, Storyboard } from '../model/storyboard.ts';

/** What the UI learns about the device once the engine is up. */
export interface EngineInfo {
  /** One line naming the adapter and the optional features in use, e.g. for a status bar. */
  label: string;
  /** A short display name for the adapter, e.g. "google swiftshader". */
  adapterName: string;
  adapter: AdapterSummary;
  /** Optional features the engine requested (each has an f32/no-op fallback). */
  features: EngineFeatures;
}

/** Result of the smoke check: one elementwise kernel on the GPU against its CPU twin. */
export interface SmokeResult {
  /** Kernel label, e.g. "elementwise.add". */
  kernel: string;
  /** Number of elements. */
  n: number;
  /** max |gpu − cpu| over all elements. */
  maxAbsError: number;
  /** The bound maxAbsError had to meet. */
  tolerance: number;
  /** Wall time of the first run: upload, pipeline compile, dispatch, read back. */
  coldMs: number;
  /** Wall time of a second run with the pipeline cached. */
  warmMs: number;
}

/**
 * Why a request failed, for the UI to branch on:
 * - `webgpu-missing`: the browser has no `navigator.gpu` (old browser, flag off, insecure origin).
 * - `no-adapter`: WebGPU exists but `requestAdapter()` found nothing (blocklisted GPU, no driver).
 * - `unsupported`: the adapter lacks a feature or limit the request needs.
 * - `gpu-validation`: WebGPU reported a validation or out-of-memory error.
 * - `device-lost`: the GPU device was lost; starting the engine again may recover.
 * - `smoke-mismatch`: the GPU result disagrees with the CPU reference.
 * - `not-initialised`: a method was called before `init()` resolved.
 * - `worker-failed`: the worker script failed to load or crashed.
 * - `model-missing`: a model file could not be fetched (404, offline).
 * - `model-invalid`: a model file is corrupt (checksum, format, shapes) or of an unknown format.
 * - `no-model`: `generate()` was called before a model was loaded.
 * - `busy`: a generation is already running (cancel it first).
 * - `cancelled`: the request was cancelled with `cancel()`.
 * - `bad-request`: the request itself is wrong (unknown words, too many frames, …); the message says which part.
 * - `internal`: anything else (a bug); the message says what.
 */
export type EngineErrorCode = (typeof ENGINE_ERROR_CODES)[number];

/** A failure as plain data (what the store keeps). */
export interface EngineErrorInfo {
  code: EngineErrorCode;
  message: string;
}

/** Called once if the device is lost after `init()`. */
export type DeviceLostListener = (error: EngineErrorInfo) => void;

/** Where a model folder is: its index.json name and the absolute URL of the folder (ending in `/`). */
export interface ModelSource {
  name: string;
  url: string;
}

/** Progress of `loadModel`, per file, then while the weights go to the GPU. */
export interface ModelLoadProgress {
  stage: 'download' | 'upload';
  file: string;
  /** Bytes of this file so far and in all (0 when the server does not say). */
  loaded: number;
  total: number;
  /** Bytes of every file so far and in all (from the manifest when it has sizes). */
  allLoaded: number;
  allTotal: number;
  /** True when the file came from this browser's cache (no download). */
  fromCache: boolean;
}

export type ModelLoadListener = (progress: ModelLoadProgress) => void;
export type GenerateListener = (progress: GenerateProgress) => void;

/**
 * Teaching mode: explain MoC routing for one query token of a storyboard's layout.
 * The query is patch `patch` (row-major) of frame `frame` of shot `shot` (indices in the board).
 *
 * Without `network`, the numbers are a seeded example on the CPU over the layout given here.
 * With it, the loaded model runs once on the generated video and its own q and k are explained;
 * the layout is then the model's (its caption length and patch grid) and `network.storyboard`'s
 * (`globalCaptionTokens`, `shots`, `tokensPerFrame` and `seed` are not used).
 */
export interface ExplainRequest {
  /** Caption token counts per shot and frames per shot, as the layout sees them (seeded example). */
  globalCaptionTokens: number;
  shots: { captionTokens: number; frames: number }[];
  tokensPerFrame: number;
  chunkFrames: number;
  topK: number;
  causal: boolean;
  query: { shot: number; frame: number; patch: number };
  /** Head to explain (0-based). */
  head: number;
  seed: number;
  /** Explain the loaded network's own queries and keys on a generated video (see ExplainNetwork). */
  network?: ExplainNetwork;
}

/**
 * One forward pass of the loaded model, in MoC mode with the request's top-k, chunk frames and
 * causality, on a generated video: its clean frames with every shot at timestep `t`, the
 * storyboard's captions; q and k of layer `layer` are read back and explained.
 */
export interface ExplainNetwork {
  /** The storyboard: its captions and frames per shot (seeds are not used). */
  storyboard: Storyboard;
  /** Each shot's frames as generated, RGBA [F, Hi, Wi, 4] at the model's frame size (copied, never transferred). */
  frames: Uint8ClampedArray[];
  /** Timestep given to every shot, in [0, 1] (e.g. 1/steps of the run: its last sampler step). */
  t: number;
  /** Layer whose q and k are explained (0-based). */
  layer: number;
}

/** How one chunk fared for the explained query. */
export interface ExplainedChunk extends Chunk {
  index: number;
  tokens: number;
  /** Score q·φ(K_c) for this chunk (computed for every chunk, used only for candidates). */
  score: number;
  mandatory: boolean;
  /** A video chunk outside M(i) that the causal mask removed (index ≥ the query's chunk). */
  causalMasked: boolean;
  candidate: boolean;
  /** Rank among the candidates by score (0 = best), null for non-candidates. */
  rank: number | null;
  routed: boolean;
}

export interface Explanation {
  /** Where the numbers come from, in one sentence (model layer or a seeded synthetic example). */
  source: string;
  /** `network`: the loaded model's own q and k on a generated video; `example`: the seeded CPU example. */
  origin: 'network' | 'example';
  /**
   * With origin `network`: the model, its layer count, the layer shown (0-based), the timestep
   * and the routing view whose q, k gave the scores (absent: 'rotary').
   */
  network?: { model: string; layers: number; layer: number; t: number; routeView?: RouteView };
  /**
   * A remark on the numbers, when there is one: e.g. that the GPU's float32 scores order two
   * near-tied candidates differently from the float64 scores shown (the routed set is the network's).
   */
  note?: string;
  heads: number;
  headDim: number;
  head: number;
  queryToken: number;
  queryChunk: number;
  /** The first values of the query vector q[h, i] (for display). */
  queryHead: number[];
  chunks: ExplainedChunk[];
  topK: number;
  causal: boolean;
  /** |Ω(i)| in tokens, and N. */
  keyTokens: number;
  totalTokens: number;
}

/**
 * The engine API. The worker exposes it with comlink; in-thread.ts provides the same object
 * without a worker (tests, Node).
 */
export interface EngineApi {
  /**
   * Acquires an adapter and a device. Idempotent: later calls return the same info.
   * @throws WorkerError `webgpu-missing` | `no-adapter` | `unsupported` | `internal`.
   */
  init(): Promise<EngineInfo>;

  /**
   * Adds two seeded vectors of 1000 on the GPU and checks the sum against the CPU twin.
   * @throws WorkerError `not-initialised` | `smoke-mismatch` | `gpu-validation` | `device-lost`.
   */
  smoke(): Promise<SmokeResult>;

  /** Registers a listener for device loss (pass it through comlink's `proxy()` across a worker). */
  onDeviceLost(listener: DeviceLostListener): void;

  /**
   * Loads a model folder (manifest.json, config.json, vocab.json, model.safetensors): files come
   * from this browser's Cache API when an earlier load stored them (checked against the
   * manifest's sha256), else from the network, and are cached for the next time. Loading the
   * model already loaded returns at once. The answer carries the model's own attention defaults.
   * @throws WorkerError `not-initialised` | `model-missing` | `model-invalid` | `device-lost` | `gpu-validation`.
   */
  loadModel(source: ModelSource, onProgress?: ModelLoadListener): Promise<LoadedModelInfo>;

  /**
   * Samples the shots of `request` not listed in `request.keep`, calling `onProgress` after
   * every sampler step. Finished frames are transferred, not copied.
   * @throws WorkerError `no-model` | `busy` | `cancelled` | `bad-request` | `device-lost` | `gpu-validation`.
   */
  generate(request: GenerateRequest, onProgress?: GenerateListener): Promise<GenerateResult>;

  /** Cancels the running generation (it rejects with `cancelled` at its next step); no-op if none. */
  cancel(): void;

  /**
   * Teaching mode: MoC routing for one query token with every number shown — scores against
   * each chunk's descriptor, causal mask, top-k, mandatory anchors, the final key set. With
   * `request.network`, one forward pass of the loaded model on the generated video gives the
   * numbers (its q and k of one layer are kept, so another head or token of the same video and
   * layer needs no second pass); without, a seeded example on the CPU.
   * @throws WorkerError `bad-request` when the query or the video is outside the layout (or a
   *   caption has unknown words); with `network`: `no-model` | `busy` (a generation is running) |
   *   `device-lost` | `gpu-validation`.
   */
  explain(request: ExplainRequest): Promise<Explanation>;

  /**
   * Destroys the GPU device as if the browser had lost it, so device-loss listeners fire: a
   * test hook for the recovery path (the studio exposes it as `window.mocStudio.loseDevice()`).
   */
  loseDevice(): void;

  /** Releases the device. The api can be initialised again afterwards. */
  dispose(): void;
}

/** How the crash test hook kills the worker: `throw` (an uncaught error, then close) or `silent` (close only). */
export type WorkerCrash = 'throw' | 'silent';

/**
 * What the engine worker exposes: the engine api plus what only makes sense in a worker — a
 * liveness ping for the client's watchdog, and a crash test hook (the studio exposes it as
 * `window.mocStudio.crashWorker()`).
 */
export interface WorkerApi extends EngineApi {
  /** Answers at once: the worker is alive and its event loop runs. */
  ping(): void;
  /**
   * Makes the worker crash. `throw` (the default): an uncaught error is thrown in it, then it
   * closes itself, so the page sees the worker's `error` event. `silent`: it only closes itself,
   * so no event comes and pending calls would never return (the client's watchdog finds it).
   */
  crash(how?: WorkerCrash): void;
}
