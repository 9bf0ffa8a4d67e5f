/**
 * Engine actions: start the worker, acquire the device, run the smoke check, and keep the
 * store's engine status in step. The worker client lives in this module, never in the store.
 *
 * Device loss: the status says so, the worker is restarted once the loss is reported, and the
 * model is loaded again; the storyboard and finished takes are untouched (they live in the
 * store, media.ts and IndexedDB, not on the GPU).
 *
 * Worker crash: the same, for a worker that dies after it was ready (its `error` event; the
 * client then rejects every pending call, so none hangs): a banner, a fresh worker, the model
 * again from the browser's cache.
 */
import { WorkerError, startEngineWorker, webGpuAvailable, type EngineClient } from '../../worker/client.ts';
import type { EngineErrorInfo, WorkerCrash } from '../../worker/protocol.ts';
import { initialEngineStatus, useStudio, type EngineStatus } from '../store.ts';

let client: EngineClient | null = null;
const readyListeners: Array<() => void> = [];
const lostListeners: Array<(error: EngineErrorInfo) => void> = [];

function set(patch: Partial<EngineStatus>): void {
  useStudio.getState().setEngine(patch);
}

function fail(error: EngineErrorInfo): void {
  set({ phase: 'error', step: null, error });
}

/** The running engine client, or null before the engine is ready. */
export function engineClient(): EngineClient | null {
  return useStudio.getState().engine.phase === 'ready' ? client : null;
}

/** Calls `fn` each time the engine becomes ready (after start, restart or recovery). */
export function onEngineReady(fn: () => void): void {
  readyListeners.push(fn);
}

/** Calls `fn` when the GPU device is lost or the worker crashes (before the engine restarts). */
export function onEngineLost(fn: (error: EngineErrorInfo) => void): void {
  lostListeners.push(fn);
}

/**
 * Starts the engine worker and runs the smoke check, unless it is already starting or ready.
 * Never throws: failures land in `engine.error` with a code the UI branches on.
 */
export async function startEngine(): Promise<void> {
  const { phase } = useStudio.getState().engine;
  if (phase === 'starting' || phase === 'ready') return;
  const { recoveries, crashes } = useStudio.getState().engine;
  set({ ...initialEngineStatus, recoveries, crashes, phase: 'starting', step: 'Starting the engine worker' });

  if (!webGpuAvailable()) {
    const why = globalThis.isSecureContext === false ? ' (WebGPU needs a secure context: https or localhost)' : '';
    fail({ code: 'webgpu-missing', message: `This browser does not expose WebGPU (navigator.gpu is missing)${why}` });
    return;
  }

  client?.terminate();
  const c = startEngineWorker();
  client = c;
  c.onDeviceLost((error) => {
    if (client === c) void recover(c, error);
  });
  let wasReady = false;
  c.onCrash((error) => {
    // A worker that never got ready (its script failed to load…) is not restarted: that would loop.
    if (client === c && wasReady) void recover(c, error);
  });

  try {
    set({ step: 'Requesting a WebGPU adapter' });
    const info = await c.init();
    set({
      adapterName: info.adapterName,
      adapter: info.adapter,
      features: info.features,
      step: 'Running the smoke kernel',
    });
    const smoke = await c.smoke();
    if (client !== c) return;
    wasReady = true;
    set({ phase: 'ready', step: null, smoke });
    for (const fn of readyListeners) fn();
  } catch (e) {
    if (client !== c) return; // superseded by a restart
    fail(e instanceof WorkerError ? e.toInfo() : { code: 'internal', message: String(e) });
  }
}

/** Stops the worker (if any) and starts again, e.g. after a device loss. */
export function restartEngine(): Promise<void> {
  client?.terminate();
  client = null;
  const { recoveries, crashes } = useStudio.getState().engine;
  set({ ...initialEngineStatus, recoveries, crashes });
  return startEngine();
}

/**
 * The device or the worker is gone (`error.code` says which): say so, tell the listeners (a run
 * in progress fails, the model is forgotten), start afresh.
 */
async function recover(c: EngineClient, error: EngineErrorInfo): Promise<void> {
  const crash = error.code === 'worker-failed';
  const what = crash ? 'The engine worker stopped' : 'The GPU device was lost';
  const message = `${what}${error.message ? ` (${error.message})` : ''}. Restarting the engine; your storyboard and finished shots are kept.`;
  fail({ code: crash ? 'worker-failed' : 'device-lost', message });
  for (const fn of lostListeners) fn(error);
  await new Promise((r) => setTimeout(r, 400)); // let the message be seen
  if (client !== c) return;
  const engine = useStudio.getState().engine;
  set(crash ? { crashes: engine.crashes + 1 } : { recoveries: engine.recoveries + 1 });
  await restartEngine();
}

/** Test hook: make the worker lose its device (see EngineApi.loseDevice). */
export function simulateDeviceLoss(): void {
  client?.loseDevice();
}

/** Test hook: make the engine worker throw and close itself, or close itself silently (see WorkerApi.crash). */
export function simulateWorkerCrash(how: WorkerCrash = 'throw'): void {
  client?.crash(how);
}
