/**
 * Versions of a shot (src/state/versions.ts, the takes slice, regenerateShot): Regenerate never
 * changes a seed silently (a shot the person changed keeps its seed; an unchanged one gets a new
 * seed that its card shows), and keeping an older version brings its seed back, so it is not
 * "changed since generated".
 */
import { beforeEach, describe, expect, it, vi } from 'vitest';
import type { GenerateListener, GenerateRequest, GenerateResult } from '../../src/worker/protocol.ts';

const calls: Array<{ request: GenerateRequest; resolve(r: GenerateResult): void }> = [];
vi.mock('../../src/state/actions/engine.ts', () => ({
  engineClient: () => ({
    generate: (request: GenerateRequest, _progress: GenerateListener) =>
      new Promise<GenerateResult>((resolve) => calls.push({ request, resolve })),
    cancel: () => undefined,
  }),
  onEngineLost: () => undefined,
}));
vi.mock('../../src/state/actions/model.ts', () => ({ ensureModel: async () => undefined }));
vi.mock('../../src/state/persist.ts', () => ({
  saveTake: async () => undefined,
  deleteTakes: async () => undefined,
  saveRun: async () => undefined,
  saveRunStep: async () => undefined,
  clearRun: async () => undefined,
  loadRun: async () => null,
}));

const { generateAll, regenerateShot } = await import('../../src/state/actions/generate.ts');
const { useStudio } = await import('../../src/state/store.ts');
const { updateShot } = await import('../../src/state/board-ops.ts');
const { changesSince, regenerateSeed } = await import('../../src/state/versions.ts');

const st = () => useStudio.getState();
const settle = () => new Promise((r) => setTimeout(r, 0));

/** Runs `start` and answers its call with frames for every shot (seed as requested). */
async function finishRun(start: () => Promise<void>): Promise<GenerateRequest> {
  const done = start();
  await settle();
  const { request, resolve } = calls[calls.length - 1];
  const shots = request.storyboard.shots.map((s, shot) => ({
    shot,
    frames: new Uint8ClampedArray(s.frames * 4),
    width: 1,
    height: 1,
    seed: s.seed,
  }));
  resolve({ shots, traces: [], timings: [], totalMs: 1, attentionFlops: { visited: 0, dense: 0 }, sparsity: 0 });
  await done;
  return request;
}

const shot = { caption: 'a', frames: 2, seed: 7 };
const kept = { caption: 'a', frames: 2, seed: 7 } as never;

describe('versions (pure)', () => {
  it('names what changed since a version', () => {
    expect(changesSince(shot, kept)).toEqual([]);
    expect(changesSince({ ...shot, caption: 'b', seed: 8 }, kept)).toEqual(['caption', 'seed']);
    expect(changesSince({ ...shot, frames: 3 }, kept)).toEqual(['length']);
  });

  it('regenerates a changed shot, or one never generated, with its own seed and an unchanged one with a new seed', () => {
    expect(regenerateSeed(shot, undefined, () => 1)).toEqual({ seed: 7, changed: false });
    expect(regenerateSeed({ ...shot, seed: 9 }, kept, () => 1)).toEqual({ seed: 9, changed: false });
    const fresh = [7, 7, 12];
    expect(regenerateSeed(shot, kept, () => fresh.shift()!)).toEqual({ seed: 12, changed: true }); // never the same seed again
  });
});

describe('regenerate and keep', () => {
  beforeEach(() => {
    calls.length = 0;
    st().setRun({ phase: 'idle' });
    st().setModel({ phase: 'ready', name: 'm', info: { imageSize: 1 } as never });
    st().setSettings({ steps: 2 });
    st().setTakes({}, {});
  });

  it('keeps a seed the person set, and keeping v1 after a reseeded v2 brings v1’s seed back (nothing "changed")', async () => {
    await finishRun(generateAll);
    const id = st().shotIds[0];
    const v1 = st().takes[id][0];
    expect(v1.seed).toBe(st().board.shots[0].seed);

    // unchanged shot: a new seed, set on the board (undoable) and used by the request
    const req = await finishRun(() => regenerateShot(id));
    const v2 = st().takes[id][1];
    expect(v2.seed).not.toBe(v1.seed);
    expect(req.storyboard.shots[0].seed).toBe(v2.seed);
    expect(st().board.shots[0].seed).toBe(v2.seed);

    // keeping v1 restores its seed: the shot is as v1 was generated
    st().chooseTake(id, v1.id);
    expect(st().chosen[id]).toBe(v1.id);
    expect(st().board.shots[0].seed).toBe(v1.seed);
    expect(changesSince(st().board.shots[0], v1)).toEqual([]);
    // keeping the version already kept changes nothing
    const before = st().past.length;
    st().chooseTake(id, v1.id);
    expect(st().board.shots[0].seed).toBe(v1.seed);
    expect(st().past.length).toBe(before);
    // one undo goes back to v2's seed
    st().undo();
    expect(st().board.shots[0].seed).toBe(v2.seed);
  });

  it('regenerates a shot whose seed was typed with exactly that seed', async () => {
    await finishRun(generateAll);
    const id = st().shotIds[1];
    st().edit((b) => updateShot(b, 1, { seed: 4_000_000_001 }));
    const req = await finishRun(() => regenerateShot(id));
    expect(req.storyboard.shots[1].seed).toBe(4_000_000_001);
    expect(st().board.shots[1].seed).toBe(4_000_000_001);
    expect(st().takes[id].at(-1)!.seed).toBe(4_000_000_001);
  });
});
