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

export type { AdapterSummary, EngineFeatures };

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
 * - `internal`: anything else (a bug); the message says what.
 */
export type EngineErrorCode =
  | 'webgpu-missing'
  | 'no-adapter'
  | 'unsupported'
  | 'gpu-validation'
  | 'device-lost'
  | 'smoke-mismatch'
  | 'not-initialised'
  | 'worker-failed'
  | 'internal';

/** A failure as plain data (what the store keeps). */
export interface EngineErrorInfo {
  code: EngineErrorCode;
  message: string;
}

/** Called once if the device is lost after `init()`. */
export type DeviceLostListener = (error: EngineErrorInfo) => void;

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

  /** Releases the device. The api can be initialised again afterwards. */
  dispose(): void;
}
