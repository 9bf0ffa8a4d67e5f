/**
 * The UI's handle on the engine: starts the module worker and wraps it with comlink.
 * This file and `import type` from protocol.ts are the only ways the UI and the state layer
 * reach src/worker/ (the linter enforces it).
 *
 * Every method rejects with a WorkerError whose `code` says what went wrong, including
 * `worker-failed` when the worker script cannot load, crashes or is terminated (instead of hanging).
 * A crash (the worker's `error` or `messageerror` event) also stops the worker for good and is
 * reported to `onCrash` listeners, so the state layer can start a fresh one. A worker that is
 * gone without an event (it closed itself, or the browser killed it quietly) is found by a
 * watchdog: while a call is pending the client pings the worker, and one ping unanswered for
 * PING_TIMEOUT_MS counts as a crash.
 */
import { proxy, releaseProxy, wrap } from 'comlink';
import { WorkerError, fromWire } from './errors.ts';
import type { EngineApi, EngineErrorInfo, WorkerApi, WorkerCrash } from './protocol.ts';

export { WorkerError };
export type * from './protocol.ts';
// The checks a model folder from disk passes before it is stored (the same as a download's), and where it is stored.
export { CACHE_NAME, LOCAL_MODELS_DIR, check as checkModelFile, parseManifest } from './model-files.ts';

/** The engine api, plus `terminate()` to stop the worker and what a crash needs. */
export interface EngineClient extends EngineApi {
  terminate(): void;
  /** Calls `listener` once if the worker crashes (not when `terminate()` stops it). */
  onCrash(listener: (error: EngineErrorInfo) => void): void;
  /** Test hook: makes the worker throw and close itself, or only close itself (see WorkerApi.crash). */
  crash(how?: WorkerCrash): void;
}

/** True when this page can see WebGPU at all (a quick check before starting the worker). */
export function webGpuAvailable(): boolean {
  return typeof navigator !== 'undefined' && 'gpu' in navigator && navigator.gpu != null;
}

/** How often the watchdog pings the worker while a call is pending, and how long a ping may go unanswered. */
const PING_EVERY_MS = 5_000;
export const PING_TIMEOUT_MS = 30_000;

/** Starts the engine worker. Nothing touches the GPU until `init()`. */
export function startEngineWorker(): EngineClient {
  const worker = new Worker(new URL('./engine.worker.ts', import.meta.url), { type: 'module', name: 'moc-engine' });
  const remote = wrap<WorkerApi>(worker);
  const crashListeners: Array<(error: EngineErrorInfo) => void> = [];
  let dead = false;

  let stop: (error: WorkerError) => void = () => undefined;
  let die: (error: WorkerError) => void = () => undefined;
  const crashed = new Promise<never>((_, reject) => {
    stop = reject;
    die = (error: WorkerError): void => {
      reject(error); // settles every pending and later call
      if (dead) return;
      dead = true;
      stopWatchdog();
      worker.terminate(); // a worker that threw may be half alive: stop it for good
      for (const fn of crashListeners) fn(error.toInfo());
    };
    worker.addEventListener('error', (ev) => {
      ev.preventDefault();
      const detail = ev.message || 'the worker script did not load (see the browser console)';
      die(new WorkerError('worker-failed', `the engine worker failed: ${detail}`));
    });
    worker.addEventListener('messageerror', () => {
      die(new WorkerError('worker-failed', 'the engine worker sent a message that could not be read'));
    });
  });
  crashed.catch(() => undefined); // observed through `call`; never an unhandled rejection

  // The watchdog: runs while calls are pending; a worker that answers no ping has died quietly.
  let pending = 0;
  let watchdog: ReturnType<typeof setInterval> | null = null;
  let pingSentAt: number | null = null;
  function stopWatchdog(): void {
    if (watchdog !== null) clearInterval(watchdog);
    watchdog = null;
    pingSentAt = null;
  }
  function tick(): void {
    if (pingSentAt === null) {
      const sent = (pingSentAt = Date.now());
      remote.ping().then(
        () => {
          if (pingSentAt === sent) pingSentAt = null;
        },
        () => undefined,
      );
    } else if (Date.now() - pingSentAt > PING_TIMEOUT_MS) {
      die(
        new WorkerError(
          'worker-failed',
          `the engine worker stopped answering (no reply in ${PING_TIMEOUT_MS / 1000} s)`,
        ),
      );
    }
  }

  function call<T>(request: Promise<T>): Promise<T> {
    pending++;
    if (watchdog === null && !dead) watchdog = setInterval(tick, PING_EVERY_MS);
    return Promise.race([request, crashed])
      .catch((e: unknown) => {
        throw fromWire(e);
      })
      .finally(() => {
        if (--pending === 0) stopWatchdog();
      });
  }

  return {
    init: () => call(remote.init()),
    smoke: () => call(remote.smoke()),
    onDeviceLost: (listener) => void remote.onDeviceLost(proxy(listener)),
    loadModel: (source, onProgress) => call(remote.loadModel(source, onProgress ? proxy(onProgress) : undefined)),
    generate: (request, onProgress) => call(remote.generate(request, onProgress ? proxy(onProgress) : undefined)),
    cancel: () => void remote.cancel(),
    explain: (request) => call(remote.explain(request)),
    loseDevice: () => void remote.loseDevice(),
    dispose: () => void remote.dispose(),
    onCrash: (listener) => void crashListeners.push(listener),
    crash: (how) => void remote.crash(how),
    terminate() {
      dead = true;
      stopWatchdog();
      remote[releaseProxy]();
      worker.terminate();
      stop(new WorkerError('worker-failed', 'the engine worker was stopped')); // settles pending calls
    },
  };
}
