/**
 * The engine api itself, running on whatever thread calls it: the worker exposes this object
 * (engine.worker.ts), and tests or Node can use it directly with another `GPU` (e.g. Dawn's).
 *
 * Every rejection is a WorkerError whose `code` the UI can branch on; the engine's own named
 * errors are mapped onto codes here.
 */
import { Engine } from '../engine/engine.ts';
import { DeviceLostError, GpuValidationError, NoAdapterError, UnsupportedError } from '../engine/errors.ts';
import { binary, elementwiseCpu } from '../engine/kernels/elementwise.ts';
import { Rng } from '../engine/random.ts';
import { WorkerError } from './errors.ts';
import { explainQuery } from './explain.ts';
import { fetchModelFiles } from './model-files.ts';
import type { AdapterSummary, DeviceLostListener, EngineApi, EngineInfo, SmokeResult } from './protocol.ts';
import { loadModelFromFiles, runExplain, runGenerate, type LoadedModel } from './runtime.ts';

/** Smoke check geometry: n is deliberately not a multiple of the kernel's workgroup size. */
export const SMOKE = { kernel: 'elementwise.add', n: 1000, seedA: 1, seedB: 2, tolerance: 1e-6 } as const;

/** The browser's (or worker's) `navigator.gpu`, if any. */
function browserGpu(): GPU | undefined {
  return (globalThis as { navigator?: { gpu?: GPU } }).navigator?.gpu;
}

/**
 * Creates the engine api over `getGpu()` (by default `navigator.gpu`).
 * Nothing is acquired until `init()`.
 */
export function createEngineApi(getGpu: () => GPU | undefined = browserGpu): EngineApi {
  let engine: Engine | null = null;
  let starting: Promise<EngineInfo> | null = null;
  const lostListeners: DeviceLostListener[] = [];
  /** The loaded model, or the load in progress, by source URL. */
  let model: { url: string; loading: Promise<LoadedModel>; loaded: LoadedModel | null } | null = null;
  let running: AbortController | null = null;
  /** The teaching-mode forward pass in progress (never rejects): the next one, or a run, waits for it. */
  let explaining: Promise<unknown> = Promise.resolve();

  async function start(): Promise<EngineInfo> {
    const gpu = getGpu();
    if (!gpu) {
      throw new WorkerError('webgpu-missing', 'WebGPU is not available in this browser (navigator.gpu is missing)');
    }
    const eng = await Engine.create(gpu);
    engine = eng;
    void eng.lost.then((lost) => {
      if (engine !== eng) return; // disposed on purpose, or already replaced
      engine = null;
      starting = null;
      model = null; // its weights died with the device
      running?.abort(new WorkerError('device-lost', lost.message)); // the run rejects with this, not `cancelled`
      for (const listener of lostListeners) listener({ code: 'device-lost', message: lost.message });
    });
    return {
      label: eng.describe(),
      adapterName: adapterName(eng.adapter),
      adapter: eng.adapter,
      features: { ...eng.features },
    };
  }

  return {
    init() {
      starting ??= start().catch((e: unknown) => {
        starting = null;
        throw toWorkerError(e);
      });
      return starting;
    },

    async smoke() {
      const eng = engine;
      if (!eng) throw new WorkerError('not-initialised', 'smoke() was called before init() resolved');
      try {
        return await smokeCheck(eng);
      } catch (e) {
        throw toWorkerError(e);
      }
    },

    onDeviceLost(listener) {
      lostListeners.push(listener);
    },

    async loadModel(source, onProgress) {
      const eng = engine;
      if (!eng) throw new WorkerError('not-initialised', 'loadModel() was called before init() resolved');
      if (model?.url !== source.url) {
        const previous = model;
        const loading = (async () => {
          const files = await fetchModelFiles(source, onProgress);
          onProgress?.({
            stage: 'upload',
            file: 'model.safetensors',
            loaded: 0,
            total: 0,
            allLoaded: 0,
            allTotal: 0,
            fromCache: true,
          });
          return loadModelFromFiles(eng, files, source.name);
        })();
        const entry: NonNullable<typeof model> = { url: source.url, loading, loaded: null };
        model = entry;
        try {
          entry.loaded = await loading;
          previous?.loaded?.dispose();
        } catch (e) {
          if (model === entry) model = null;
          throw toWorkerError(e);
        }
      }
      try {
        return (await model.loading).info; // loaded, or being loaded by an earlier call
      } catch (e) {
        throw toWorkerError(e);
      }
    },

    async generate(request, onProgress) {
      const eng = engine;
      if (!eng) throw new WorkerError('not-initialised', 'generate() was called before init() resolved');
      const m = model?.loaded;
      if (!m) throw new WorkerError('no-model', 'generate() was called before a model was loaded');
      if (running) throw new WorkerError('busy', 'a generation is already running; cancel it first');
      const ac = new AbortController();
      running = ac;
      let step = 0;
      try {
        await explaining; // one model on one engine: a teaching forward pass finishes first (a cancel meanwhile stops the run at once)
        return await runGenerate(
          m,
          request,
          (p) => {
            step = p.step;
            if (ac.signal.aborted) throw cancelled(step, p.steps);
            try {
              void Promise.resolve(onProgress?.(p)).catch(() => undefined);
            } catch {
              // a listener that throws (or a closed proxy) must not stop the run
            }
          },
          ac.signal,
        );
      } catch (e) {
        if (ac.signal.reason instanceof WorkerError) throw ac.signal.reason;
        if (ac.signal.aborted && engine === eng) throw cancelled(step, request.steps);
        throw toWorkerError(e);
      } finally {
        if (running === ac) running = null;
      }
    },

    cancel() {
      running?.abort();
    },

    async explain(request) {
      if (!request.network) {
        try {
          return explainQuery(request);
        } catch (e) {
          throw e instanceof WorkerError
            ? e
            : new WorkerError('bad-request', e instanceof Error ? e.message : String(e));
        }
      }
      if (!engine) throw new WorkerError('not-initialised', 'explain() was called before init() resolved');
      const m = model?.loaded;
      if (!m) throw new WorkerError('no-model', 'the network’s numbers need a loaded model; none is loaded');
      if (running) throw new WorkerError('busy', 'a generation is running; pick the token again when it has finished');
      const job = explaining.then(() => runExplain(m, request));
      explaining = job.catch(() => undefined);
      try {
        return await job;
      } catch (e) {
        throw toWorkerError(e);
      }
    },

    loseDevice() {
      engine?.device.destroy(); // engine stays set, so the `lost` handler treats it as a real loss
    },

    dispose() {
      const eng = engine;
      engine = null;
      starting = null;
      running?.abort();
      model?.loaded?.dispose();
      model = null;
      eng?.destroy();
    },
  };
}

/** A short display name: the adapter's description, or vendor + architecture. */
export function adapterName(a: AdapterSummary): string {
  return a.description || [a.vendor, a.architecture, a.device].filter(Boolean).join(' ') || 'unknown adapter';
}

/** Runs `a + b` twice (cold, then with the pipeline cached) and compares with the CPU twin. */
async function smokeCheck(eng: Engine): Promise<SmokeResult> {
  const { n, tolerance } = SMOKE;
  const a = new Rng(SMOKE.seedA).normals(n);
  const b = new Rng(SMOKE.seedB).normals(n);
  const cold = await addOnGpu(eng, a, b);
  const warm = await addOnGpu(eng, a, b);
  const want = elementwiseCpu('add', a, b);
  for (const run of [cold, warm]) {
    const check = compare(run.out, want, tolerance);
    if (check.bad > 0) {
      const w = check.worst;
      throw new WorkerError(
        'smoke-mismatch',
        `${SMOKE.kernel}: ${check.bad} of ${n} elements differ from the CPU reference by more than ${tolerance} ` +
          `(worst at index ${w}: gpu ${run.out[w]}, cpu ${want[w]})`,
      );
    }
  }
  return {
    kernel: SMOKE.kernel,
    n,
    maxAbsError: compare(warm.out, want, tolerance).maxAbsError,
    tolerance,
    coldMs: cold.ms,
    warmMs: warm.ms,
  };
}

async function addOnGpu(eng: Engine, a: Float32Array, b: Float32Array): Promise<{ out: Float32Array; ms: number }> {
  const t0 = performance.now();
  const ta = eng.upload(a, [a.length], 'smoke.a');
  const tb = eng.upload(b, [b.length], 'smoke.b');
  const to = eng.tensor([a.length], 'f32', 'smoke.out');
  try {
    eng.poison(to); // an element the kernel never writes stays NaN and fails the check
    await binary(eng, 'add', ta, tb, to);
    const out = (await eng.read(to)) as Float32Array;
    return { out, ms: performance.now() - t0 };
  } finally {
    for (const t of [ta, tb, to]) t.dispose();
  }
}

/** max |got − want| (NaN counts as infinitely wrong), how many exceed `tol`, and the worst index. */
function compare(
  got: Float32Array,
  want: Float32Array,
  tol: number,
): { maxAbsError: number; bad: number; worst: number } {
  let maxAbsError = 0;
  let bad = 0;
  let worst = 0;
  for (let i = 0; i < want.length; i++) {
    const d = Math.abs(got[i] - want[i]);
    const err = Number.isNaN(d) ? Infinity : d;
    if (err > tol) bad++;
    if (err > maxAbsError) {
      maxAbsError = err;
      worst = i;
    }
  }
  return { maxAbsError, bad, worst };
}

function cancelled(step: number, steps: number): WorkerError {
  return new WorkerError('cancelled', `generation cancelled after step ${step} of ${steps}`);
}

/** Maps the engine's named errors onto the codes of the protocol. */
function toWorkerError(e: unknown): WorkerError {
  if (e instanceof WorkerError) return e;
  const message = e instanceof Error ? e.message : String(e);
  if (e instanceof NoAdapterError) return new WorkerError('no-adapter', message);
  if (e instanceof UnsupportedError) return new WorkerError('unsupported', message);
  if (e instanceof GpuValidationError) return new WorkerError('gpu-validation', message);
  if (e instanceof DeviceLostError) return new WorkerError('device-lost', message);
  return new WorkerError('internal', e instanceof Error ? `${e.name}: ${message}` : message);
}
