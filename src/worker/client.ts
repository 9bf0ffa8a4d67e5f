/**
 * The UI's handle on the engine: starts the module worker and wraps it with comlink.
 * This file and `import type` from protocol.ts are the only ways the UI and the state layer
 * reach src/worker/ (the linter enforces it).
 *
 * Every method rejects with a WorkerError whose `code` says what went wrong, including
 * `worker-failed` when the worker script cannot load, crashes or is terminated (instead of hanging).
 */
import { proxy, releaseProxy, wrap } from 'comlink';
import { WorkerError, fromWire } from './errors.ts';
import type { EngineApi } from './protocol.ts';

export { WorkerError };
export type * from './protocol.ts';
// Pure storyboard code the page needs on the main thread (parsing imports, the schema's limits).
export { MAX_SHOT_FRAMES, MAX_SHOTS, MAX_STORYBOARD_BYTES, STORYBOARD_VERSION, StoryboardError, parseStoryboard, parseStoryboardJson } from '../model/storyboard.ts';

/** The engine api, plus `terminate()` to stop the worker. */
export interface EngineClient extends EngineApi {
  terminate(): void;
}

/** True when this page can see WebGPU at all (a quick check before starting the worker). */
export function webGpuAvailable(): boolean {
  return typeof navigator !== 'undefined' && 'gpu' in navigator && navigator.gpu != null;
}

/** Starts the engine worker. Nothing touches the GPU until `init()`. */
export function startEngineWorker(): EngineClient {
  const worker = new Worker(new URL('./engine.worker.ts', import.meta.url), { type: 'module', name: 'moc-engine' });
  const remote = wrap<EngineApi>(worker);

  let stop: (error: WorkerError) => void = () => undefined;
  const crashed = new Promise<never>((_, reject) => {
    stop = reject;
    worker.addEventListener('error', (ev) => {
      ev.preventDefault();
      const detail = ev.message || 'the worker script did not load (see the browser console)';
      reject(new WorkerError('worker-failed', `the engine worker failed: ${detail}`));
    });
    worker.addEventListener('messageerror', () => {
      reject(new WorkerError('worker-failed', 'the engine worker sent a message that could not be read'));
    });
  });
  crashed.catch(() => undefined); // observed through `call`; never an unhandled rejection

  function call<T>(request: Promise<T>): Promise<T> {
    return Promise.race([request, crashed]).catch((e: unknown) => {
      throw fromWire(e);
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
    terminate() {
      remote[releaseProxy]();
      worker.terminate();
      stop(new WorkerError('worker-failed', 'the engine worker was stopped')); // settles pending calls
    },
  };
}
