/**
 * Resuming a run that a device loss or a worker crash interrupted (src/state/actions/generate.ts),
 * against a fake engine client: the run is kept with its request, Resume sends that request
 * again, Dismiss and a new run forget it, and a loss after the frames came back does not offer it.
 */
import { beforeEach, describe, expect, it, vi } from 'vitest';
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
vi.mock('../../src/state/persist.ts', () => ({ saveTake: () => saving, deleteTakes: async () => undefined }));

const { dismissResume, generateAll, resumeGeneration, startRunRecovery } = await import('../../src/state/actions/generate.ts');
const { useStudio } = await import('../../src/state/store.ts');
const { updateShot } = await import('../../src/state/board-ops.ts');
const { WorkerError } = await import('../../src/worker/client.ts');

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
  const shots = req.storyboard.shots.map((s, shot) => ({ shot, frames: new Uint8ClampedArray(s.frames * SIZE * SIZE * 4), width: SIZE, height: SIZE, seed: s.seed }));
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

startRunRecovery();

describe('resuming an interrupted run', () => {
  beforeEach(() => {
    calls.length = 0;
    saving = Promise.resolve();
    dismissResume();
    st().setRun({ phase: 'idle' });
    st().setModel({ phase: 'ready', name: 'm', info: { imageSize: SIZE } as never });
    st().setSettings({ steps: 40 });
  });

  it('keeps the run a device loss cut short and resumes it with the same request', async () => {
    const { done, call } = await startRun();
    const shots = st().board.shots.length;
    loseDevice(call);
    await done;
    expect(st().run.phase).toBe('error');
    expect(st().run.error?.message).toMatch(/^The GPU device was lost during generation\..*resume the run/);
    expect(st().interrupted).toEqual({ kind: 'all', shots, step: 3, steps: 40 });

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
  });

  it("is offered the same when the run's own device-lost rejection comes before the loss notice", async () => {
    const { done, call } = await startRun();
    call.reject(new WorkerError('device-lost', 'GPU device lost (destroyed)'));
    await done;
    for (const fn of lostListeners) fn({ code: 'device-lost', message: 'destroyed' });
    expect(st().run.error).toMatchObject({ code: 'device-lost', message: expect.stringMatching(/^The GPU device was lost during generation\./) });
    expect(st().interrupted).toMatchObject({ kind: 'all', step: 3 });
  });

  it('Dismiss forgets it; so does a new run', async () => {
    let { done } = await startRun();
    loseDevice();
    await done;
    expect(st().interrupted).not.toBeNull();
    dismissResume();
    expect(st().interrupted).toBeNull();
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
    calls[2].resolve(resultFor(calls[2].request));
    await fresh;
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
  });
});
