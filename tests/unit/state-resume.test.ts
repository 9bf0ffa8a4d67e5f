/**
 * Resuming a run that a device loss or a worker crash interrupted (src/state/actions/generate.ts),
 * against a fake engine client: the run is kept with its request, Resume sends that request
 * again, Dismiss and a new run forget it, and a loss after the frames came back does not offer it.
 * The run is kept in (fake) IndexedDB too: a reload (fresh modules, the same database) offers it
 * again, whether it was interrupted or still running when the page went away.
 */
import 'fake-indexeddb/auto';
import { openDB } from 'idb';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import type * as PersistModule from '../../src/state/persist.ts';
import type { GenerateListener, GenerateRequest, GenerateResult } from '../../src/worker/protocol.ts';
import type { EngineErrorInfo } from '../../src/worker/protocol.ts';

/** One call to the fake client's generate: its request, progress callback, and how to end it. */
interface Call {
  request: GenerateRequest;
  progress: GenerateListener;
  resolve(r: GenerateResult): void;
  reject(e: Error): void;
}
const calls: Call[] = [];
const lostListeners: Array<(e: EngineErrorInfo) => void> = [];
let saving: Promise<void> = Promise.resolve();

vi.mock('../../src/state/actions/engine.ts', () => ({
  engineClient: () => ({
    generate: (request: GenerateRequest, progress: GenerateListener) =>
      new Promise<GenerateResult>((resolve, reject) => calls.push({ request, progress, resolve, reject })),
    cancel: () => undefined,
  }),
  onEngineLost: (fn: (e: EngineErrorInfo) => void) => lostListeners.push(fn),
}));
vi.mock('../../src/state/actions/model.ts', () => ({ ensureModel: async () => undefined }));
vi.mock('../../src/state/persist.ts', async (importOriginal) => ({
  ...(await importOriginal<typeof PersistModule>()),
  saveTake: () => saving,
  deleteTakes: async () => undefined,
}));

const { cancelGeneration, dismissResume, generateAll, regenerateShot, resumeGeneration, runKept, startRunRecovery } =
  await import('../../src/state/actions/generate.ts');
const { useStudio } = await import('../../src/state/store.ts');
const { updateShot } = await import('../../src/state/board-ops.ts');
const { WorkerError } = await import('../../src/worker/client.ts');
const persist = await import('../../src/state/persist.ts');

const SIZE = 2;
const st = () => useStudio.getState();
const settle = () => new Promise((r) => setTimeout(r, 0));
/** The device is lost: the listeners hear of it, then the pending call fails (as the worker's does). */
function loseDevice(call = calls[calls.length - 1]): void {
  for (const fn of lostListeners) fn({ code: 'device-lost', message: 'destroyed' });
  call.reject(new Error('the device is gone'));
}

/** What the worker answers: every shot of the request, frames of the right size. */
function resultFor(req: GenerateRequest): GenerateResult {
  const shots = req.storyboard.shots.map((s, shot) => ({
    shot,
    frames: new Uint8ClampedArray(s.frames * SIZE * SIZE * 4),
    width: SIZE,
    height: SIZE,
    seed: s.seed,
  }));
  return { shots, traces: [], timings: [], totalMs: 1, attentionFlops: { visited: 0, dense: 0 }, sparsity: 0 };
}

/** Starts a run and lets it reach the worker and step 3. */
async function startRun(): Promise<{ done: Promise<void>; call: Call }> {
  const done = generateAll();
  await settle();
  const call = calls[calls.length - 1];
  call.progress({ step: 3, steps: call.request.steps, elapsedMs: 30 });
  return { done, call };
}

/** The run kept in IndexedDB once every write asked for so far is made. */
async function keptRun(kept = runKept): Promise<Awaited<ReturnType<typeof persist.loadRun>>> {
  await kept();
  return persist.loadRun();
}

/**
 * A reload: fresh modules (store, actions, persistence) over the same database, started as
 * src/main.tsx starts them; the model `m` is loaded again unless `model` names another.
 */
async function reload(model = 'm') {
  vi.resetModules();
  const gen = await import('../../src/state/actions/generate.ts');
  const { useStudio: store } = await import('../../src/state/store.ts');
  const { restoreStudio } = await import('../../src/state/actions/board.ts');
  await restoreStudio();
  const restored = store.getState().interrupted;
  gen.startRunRecovery();
  store.getState().setModel({ phase: 'ready', name: model, info: { imageSize: SIZE } as never });
  return { gen, store, restored };
}

startRunRecovery();

/** Each test starts with no run, nothing to resume, the model `m` loaded and 40 steps set. */
function fresh(): void {
  calls.length = 0;
  saving = Promise.resolve();
  dismissResume();
  st().setRun({ phase: 'idle' });
  st().setModel({ phase: 'ready', name: 'm', info: { imageSize: SIZE } as never });
  st().setSettings({ steps: 40, model: null });
}

describe('resuming an interrupted run', () => {
  beforeEach(fresh);

  it('keeps the run a device loss cut short and resumes it with the same request', async () => {
    const { done, call } = await startRun();
    const shots = st().board.shots.length;
    loseDevice(call);
    await done;
    expect(st().run.phase).toBe('error');
    expect(st().run.error?.message).toMatch(/^The GPU device was lost during generation\..*resume the run/);
    expect(st().interrupted).toEqual({ kind: 'all', shots, step: 3, steps: 40 });
    // kept in IndexedDB as it was sent, for a reload
    const saved = await keptRun();
    expect(saved).toMatchObject({ model: 'm', step: 3, plan: { kind: 'all', targets: st().shotIds } });
    expect(saved!.plan.request).toEqual(call.request);

    // the person moves on meanwhile: the resumed run is still the one that was interrupted
    st().setSettings({ steps: 5 });
    st().edit((b) => updateShot(b, 0, { seed: 999 }));
    const resumed = resumeGeneration();
    await settle();
    expect(st().interrupted).toBeNull();
    expect(calls).toHaveLength(2);
    expect(calls[1].request).toBe(call.request);
    expect(calls[1].request.steps).toBe(40);
    expect(calls[1].request.storyboard.shots[0].seed).not.toBe(999);
    calls[1].resolve(resultFor(calls[1].request));
    await resumed;
    expect(st().run.phase).toBe('done');
    expect(Object.keys(st().chosen)).toHaveLength(shots);
    expect(await keptRun()).toBeNull();
  });

  it("is offered the same when the run's own device-lost rejection comes before the loss notice", async () => {
    const { done, call } = await startRun();
    call.reject(new WorkerError('device-lost', 'GPU device lost (destroyed)'));
    await done;
    for (const fn of lostListeners) fn({ code: 'device-lost', message: 'destroyed' });
    expect(st().run.error).toMatchObject({
      code: 'device-lost',
      message: expect.stringMatching(/^The GPU device was lost during generation\./),
    });
    expect(st().interrupted).toMatchObject({ kind: 'all', step: 3 });
  });

  it('Dismiss forgets it; so does a new run', async () => {
    let { done } = await startRun();
    loseDevice();
    await done;
    expect(st().interrupted).not.toBeNull();
    expect(await keptRun()).not.toBeNull();
    dismissResume();
    expect(st().interrupted).toBeNull();
    expect(await keptRun()).toBeNull();
    await resumeGeneration();
    expect(calls).toHaveLength(1);

    ({ done } = await startRun());
    loseDevice();
    await done;
    expect(st().interrupted).not.toBeNull();
    const fresh = generateAll();
    await settle();
    expect(st().interrupted).toBeNull();
    expect(calls).toHaveLength(3);
    expect(calls[2].request).not.toBe(calls[1].request);
    expect((await keptRun())!.plan.request).toEqual(calls[2].request);
    calls[2].resolve(resultFor(calls[2].request));
    await fresh;
    expect(await keptRun()).toBeNull();
  });

  it('a loss after the frames came back lets the run finish and offers nothing', async () => {
    let saved!: () => void;
    saving = new Promise((r) => (saved = r));
    const { done, call } = await startRun();
    call.resolve(resultFor(call.request));
    await settle(); // the takes are being saved (no GPU needed)
    for (const fn of lostListeners) fn({ code: 'device-lost', message: 'destroyed' });
    saved();
    await done;
    expect(st().run.phase).toBe('done');
    expect(st().interrupted).toBeNull();
    expect(await keptRun()).toBeNull();
  });

  it('keeps the run in IndexedDB while it runs, and forgets it when it is cancelled or fails', async () => {
    let { done, call } = await startRun();
    expect(await keptRun()).toMatchObject({ step: 3, plan: { kind: 'all' } });
    cancelGeneration();
    call.reject(new WorkerError('cancelled', 'Cancelled at step 3'));
    await done;
    expect(st().run.phase).toBe('cancelled');
    expect(await keptRun()).toBeNull();

    ({ done, call } = await startRun());
    call.reject(new WorkerError('bad-request', 'storyboard.shots[0].caption: unknown word'));
    await done;
    expect(st().run.phase).toBe('error');
    expect(st().interrupted).toBeNull();
    expect(await keptRun()).toBeNull();
  });

  it('choosing another model forgets the interrupted run, in IndexedDB too', async () => {
    const { done } = await startRun();
    loseDevice();
    await done;
    st().selectModel('m');
    expect(st().interrupted).not.toBeNull();
    expect(await keptRun()).not.toBeNull();
    st().selectModel('other');
    expect(st().interrupted).toBeNull();
    expect(await keptRun()).toBeNull();
  });
});

describe('after a reload', () => {
  beforeEach(fresh);

  it('a run still in progress when the page went away is offered, and Resume sends its request again', async () => {
    // a regenerate run, so the request keeps the other shots' pixels
    const first = generateAll();
    await settle();
    calls[0].resolve(resultFor(calls[0].request));
    await first;
    const regen = regenerateShot(st().shotIds[1]);
    await settle();
    const call = calls[1];
    call.progress({ step: 3, steps: 40, elapsedMs: 30 });
    expect(call.request.keep!.length).toBeGreaterThan(0);
    await runKept();
    void regen; // never ends: the page goes away

    const { gen, store, restored } = await reload();
    expect(restored).toEqual({ kind: 'regenerate', shots: 1, step: 3, steps: 40 });
    const resumed = gen.resumeGeneration();
    await settle();
    expect(calls).toHaveLength(3);
    expect(calls[2].request).toEqual(call.request);
    expect(calls[2].request.keep![0].frames).toEqual(call.request.keep![0].frames);
    expect(store.getState().interrupted).toBeNull();
    calls[2].resolve(resultFor(calls[2].request));
    await resumed;
    expect(store.getState().run.phase).toBe('done');
    expect(await keptRun(gen.runKept)).toBeNull();
  });

  it('a run a device loss interrupted is offered again; Dismiss forgets it for the next reload too', async () => {
    const { done } = await startRun();
    loseDevice();
    await done;
    await runKept();
    const { gen, store, restored } = await reload();
    expect(restored).toEqual(st().interrupted);
    gen.dismissResume();
    expect(store.getState().interrupted).toBeNull();
    await gen.runKept();
    expect((await reload()).restored).toBeNull();
  });

  it('a run made for another model than the one selected, or the one that loads, is forgotten', async () => {
    const interrupt = async (): Promise<void> => {
      const { done } = await startRun();
      loseDevice();
      await done;
      await runKept();
    };
    await interrupt();
    await persist.saveSettings({ ...st().settings, model: 'other' });
    const chosen = await reload('other');
    expect(chosen.restored).toBeNull();
    expect(await keptRun(chosen.gen.runKept)).toBeNull();

    // the settings name no model (the index's default): it is known once the model loads
    await persist.saveSettings({ ...st().settings, model: null });
    await interrupt();
    const byDefault = await reload('other');
    expect(byDefault.restored).not.toBeNull();
    expect(byDefault.store.getState().interrupted).toBeNull();
    expect(await keptRun(byDefault.gen.runKept)).toBeNull();
  });

  it('a broken or newer run record says so in one line and the board still loads', async () => {
    const board = { version: 1 as const, globalCaption: 'kept board', shots: [{ caption: 'a', frames: 1, seed: 1 }] };
    const rev = (await persist.loadBoard())?.rev ?? 0;
    await persist.saveBoard({ board, shotIds: ['k1'] }, {}, rev);
    const raw = await openDB(persist.DB_NAME, persist.DB_VERSION);
    for (const [rec, why] of [
      [
        { format: 1, id: 'r', model: null, plan: { kind: 'all' } },
        /^The interrupted run could not be restored: the saved run's storyboard is unreadable: storyboard: /,
      ],
      [
        { format: 99, id: 'r' },
        /^The interrupted run could not be restored: the saved run has format 99, newer than this studio's 1$/,
      ],
    ] as const) {
      await raw.put('kv', rec, 'run');
      const { store, restored } = await reload();
      expect(restored).toBeNull();
      expect(store.getState().board).toEqual(board);
      expect(store.getState().shotIds).toEqual(['k1']);
      expect(store.getState().save.state).toBe('saved');
      expect(store.getState().save.message).toMatch(why);
    }
    raw.close();
  });
});
