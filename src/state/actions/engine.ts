/**
 * Engine actions: start the worker, acquire the device, run the smoke check, and keep the
 * store's engine status in step. The worker client lives in this module, never in the store.
 *
 * Device loss: the status says so, the worker is restarted once the loss is reported, and the
 * model is loaded again; the storyboard and finished takes are untouched (they live in the
 * store, media.ts and IndexedDB, not on the GPU).
 */
import { WorkerError, startEngineWorker, webGpuAvailable, type EngineClient } from '../../worker/client.ts';
import type { EngineErrorInfo } from '../../worker/protocol.ts';
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

/** Calls `fn` when the GPU device is lost (before the engine restarts). */
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
  const recoveries = useStudio.getState().engine.recoveries;
  set({ ...initialEngineStatus, recoveries, phase: 'starting', step: 'Starting the engine worker' });

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

  try {
    set({ step: 'Requesting a WebGPU adapter' });
    const info = await c.init();
    set({ adapterName: info.adapterName, adapter: info.adapter, features: info.features, step: 'Running the smoke kernel' });
    const smoke = await c.smoke();
    if (client !== c) return;
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
  set({ ...initialEngineStatus, recoveries: useStudio.getState().engine.recoveries });
  return startEngine();
}

/** The device is gone: say so, tell the listeners (a run in progress fails), start afresh. */
async function recover(c: EngineClient, error: EngineErrorInfo): Promise<void> {
  const message = `The GPU device was lost${error.message ? ` (${error.message})` : ''}. Restarting the engine; your storyboard and finished shots are kept.`;
  fail({ code: 'device-lost', message });
  for (const fn of lostListeners) fn(error);
  await new Promise((r) => setTimeout(r, 400)); // let the loss message be seen
  if (client !== c) return;
  set({ recoveries: useStudio.getState().engine.recoveries + 1 });
  await restartEngine();
}

/** Test hook: make the worker lose its device (see EngineApi.loseDevice). */
export function simulateDeviceLoss(): void {
  client?.loseDevice();
}
