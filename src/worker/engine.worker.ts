/**
 * The engine worker: exposes the engine api (in-thread.ts) with comlink and nothing else.
 * Rejections cross the boundary as plain data (errors.ts) so the client can rebuild them.
 */
import { expose } from 'comlink';
import { toWire } from './errors.ts';
import { createEngineApi } from './in-thread.ts';
import type { EngineApi } from './protocol.ts';

const api = createEngineApi();

function wire<T>(p: Promise<T>): Promise<T> {
  return p.catch((e: unknown) => {
    throw toWire(e);
  });
}

const exposed: EngineApi = {
  init: () => wire(api.init()),
  smoke: () => wire(api.smoke()),
  onDeviceLost: (listener) => api.onDeviceLost(listener),
  dispose: () => api.dispose(),
};

expose(exposed);
