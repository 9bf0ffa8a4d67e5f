/**
 * Engine actions: start the worker, acquire the device, run the smoke check, and keep the
 * store's engine status in step. The worker client lives in this module, never in the store.
 */
import { WorkerError, startEngineWorker, webGpuAvailable, type EngineClient } from '../../worker/client.ts';
import type { EngineErrorInfo } from '../../worker/protocol.ts';
import { initialEngineStatus, useStudio, type EngineStatus } from '../store.ts';

let client: EngineClient | null = null;

function set(patch: Partial<EngineStatus>): void {
  useStudio.getState().setEngine(patch);
}

function fail(error: EngineErrorInfo): void {
  set({ phase: 'error', step: null, error });
}

/**
 * Starts the engine worker and runs the smoke check, unless it is already starting or ready.
 * Never throws: failures land in `engine.error` with a code the UI branches on.
 */
export async function startEngine(): Promise<void> {
  const { phase } = useStudio.getState().engine;
  if (phase === 'starting' || phase === 'ready') return;
  set({ ...initialEngineStatus, phase: 'starting', step: 'Starting the engine worker' });

  if (!webGpuAvailable()) {
    const why = globalThis.isSecureContext === false ? ' (WebGPU needs a secure context: https or localhost)' : '';
    fail({ code: 'webgpu-missing', message: `This browser does not expose WebGPU (navigator.gpu is missing)${why}` });
    return;
  }

  client?.terminate();
  const c = startEngineWorker();
  client = c;
  c.onDeviceLost((error) => {
    if (client === c) fail(error);
  });

  try {
    set({ step: 'Requesting a WebGPU adapter' });
    const info = await c.init();
    set({ adapterName: info.adapterName, adapter: info.adapter, features: info.features, step: 'Running the smoke kernel' });
    const smoke = await c.smoke();
    if (client === c) set({ phase: 'ready', step: null, smoke });
  } catch (e) {
    if (client !== c) return; // superseded by a restart
    fail(e instanceof WorkerError ? e.toInfo() : { code: 'internal', message: String(e) });
  }
}

/** Stops the worker (if any) and starts again, e.g. after a device loss. */
export function restartEngine(): Promise<void> {
  client?.terminate();
  client = null;
  set({ ...initialEngineStatus });
  return startEngine();
}
