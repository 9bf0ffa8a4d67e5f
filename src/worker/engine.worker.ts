/**
 * The engine worker: exposes the engine api (in-thread.ts) with comlink and nothing else.
 * Rejections cross the boundary as plain data (errors.ts) so the client can rebuild them;
 * finished frames are transferred to the page, not copied.
 */
import { expose, transfer } from 'comlink';
import { toWire } from './errors.ts';
import { createEngineApi } from './in-thread.ts';
import type { WorkerApi } from './protocol.ts';

const api = createEngineApi();

function wire<T>(p: Promise<T>): Promise<T> {
  return p.catch((e: unknown) => {
    throw toWire(e);
  });
}

const exposed: WorkerApi = {
  init: () => wire(api.init()),
  smoke: () => wire(api.smoke()),
  onDeviceLost: (listener) => api.onDeviceLost(listener),
  loadModel: (source, onProgress) => wire(api.loadModel(source, onProgress)),
  generate: (request, onProgress) =>
    wire(
      api.generate(request, onProgress).then((result) => {
        const buffers = result.shots.map((s) => s.frames.buffer).filter((b, i, all) => all.indexOf(b) === i);
        return transfer(result, buffers as ArrayBuffer[]);
      }),
    ),
  cancel: () => api.cancel(),
  explain: (request) => wire(api.explain(request)),
  loseDevice: () => api.loseDevice(),
  dispose: () => api.dispose(),
  ping: () => undefined,
  crash: (how = 'throw') => {
    if (how === 'silent') return self.close(); // no error event: only the client's watchdog can tell
    setTimeout(() => {
      throw new Error('simulated crash (test hook)');
    });
    setTimeout(() => self.close(), 100); // gone for good, even if the page did not stop it
  },
};

expose(exposed);
