/**
 * Silent loss in the studio's storage (src/state/persist.ts, actions/board.ts, actions/generate.ts)
 * against fake IndexedDB and a fake engine. A "tab" is a fresh copy of the studio's modules
 * (vi.resetModules) on the same database, as a second tab of one browser profile is.
 * - a stale tab's autosave does not replace another tab's board: it is refused with a message;
 * - a storage error (quota) stays in the indicator until the takes are saved, instead of a later
 *   autosave's "Saved";
 * - damaged records are skipped or reset field by field with a message, the rest loads;
 * - takes of shots no longer on the board are deleted at start;
 * - with Web Locks, a run live in one tab is neither offered for resuming nor deleted nor
 *   started again in another.
 */
import 'fake-indexeddb/auto';
import { openDB } from 'idb';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type * as PersistModule from '../../src/state/persist.ts';
import type { GenerateRequest, GenerateResult } from '../../src/worker/protocol.ts';

const calls: Array<{ request: GenerateRequest; resolve(r: GenerateResult): void }> = [];
const fail = vi.hoisted(() => ({ saveTake: null as Error | null }));

vi.mock('../../src/state/actions/engine.ts', () => ({
  engineClient: () => ({
    generate: (request: GenerateRequest) => new Promise<GenerateResult>((resolve) => calls.push({ request, resolve })),
    cancel: () => undefined,
  }),
  onEngineLost: () => undefined,
}));
vi.mock('../../src/state/actions/model.ts', () => ({ ensureModel: async () => undefined }));
vi.mock('../../src/state/persist.ts', async (importOriginal) => {
  const real = await importOriginal<typeof PersistModule>();
  return {
    ...real,
    saveTake: async (...a: Parameters<typeof real.saveTake>) => {
      if (fail.saveTake) throw fail.saveTake;
      return real.saveTake(...a);
    },
  };
});

/** A fake LockManager shared by every tab (one browser profile). */
const held = new Set<string>();
vi.stubGlobal('navigator', {
  ...globalThis.navigator,
  locks: {
    request: (name: string, cb: () => Promise<void>) => {
      held.add(name);
      return cb().finally(() => held.delete(name));
    },
    query: async () => ({ held: [...held].map((name) => ({ name })) }),
  },
});

const SIZE = 2;
const wait = (ms = 0) => new Promise((r) => setTimeout(r, ms));

/** A tab: fresh modules, the studio restored from the database, autosave on, model `m` loaded. */
async function openTab() {
  vi.resetModules();
  const gen = await import('../../src/state/actions/generate.ts');
  const board = await import('../../src/state/actions/board.ts');
  const ops = await import('../../src/state/board-ops.ts');
  const { useStudio: store } = await import('../../src/state/store.ts');
  await board.restoreStudio();
  const stop = board.startAutosave();
  gen.startRunRecovery();
  store.getState().setModel({ phase: 'ready', name: 'm', info: { imageSize: SIZE } as never });
  return { gen, board, ops, store, stop, persist: await import('../../src/state/persist.ts') };
}
type Tab = Awaited<ReturnType<typeof openTab>>;
const tabs: Tab[] = [];
async function tab(): Promise<Tab> {
  const t = await openTab();
  tabs.push(t);
  return t;
}
/** Tab `t`'s user edits the global caption (an undoable board change, autosaved). */
function setGlobalCaption(t: Tab, caption: string): void {
  const st = t.store.getState();
  st.replaceBoard({ board: { ...st.board, globalCaption: caption }, shotIds: st.shotIds }, true);
}
/** Waits for autosave (250 ms after the last change) to have written. */
const saved = () => wait(400);

function result(req: GenerateRequest): GenerateResult {
  const shots = req.storyboard.shots.map((s, shot) => ({
    shot,
    frames: new Uint8ClampedArray(s.frames * SIZE * SIZE * 4).fill(9),
    width: SIZE,
    height: SIZE,
    seed: s.seed,
  }));
  return { shots, traces: [], timings: [], totalMs: 1, attentionFlops: { visited: 0, dense: 0 }, sparsity: 0 };
}

afterEach(async () => {
  held.clear();
  for (const t of tabs.splice(0)) {
    t.stop();
    await t.persist.closeDb();
  }
  fail.saveTake = null;
  calls.length = 0;
  const raw = await openDB('moc-studio', 1);
  await raw.clear('kv');
  await raw.clear('takes');
  raw.close();
});

describe('two tabs of one profile', () => {
  it("a stale tab's edit does not replace the other tab's board: refused with a message", async () => {
    const a = await tab();
    const b = await tab(); // opened now: stale once A saves
    a.store.getState().replaceBoard(
      a.ops.updateShot({ board: a.store.getState().board, shotIds: a.store.getState().shotIds }, 0, {
        caption: 'edited in tab A',
      }),
      true,
    );
    await saved();
    expect(a.store.getState().save.state).toBe('saved');
    setGlobalCaption(b, 'edited in tab B');
    await saved();
    expect(b.store.getState().save.state).toBe('error');
    expect(b.store.getState().save.message).toMatch(
      /^Not saved: the storyboard was changed in another tab since this tab loaded it\. Reload to see that version/,
    );
    const reloaded = await tab();
    expect(reloaded.store.getState().board.shots[0].caption).toBe('edited in tab A');
    // tab B stays refused (its edit is still in its page, to export) until it reloads
    setGlobalCaption(b, 'again in B');
    await saved();
    expect(b.store.getState().save.state).toBe('error');
  });

  it('a run live in one tab is not offered, deleted or started again in another', async () => {
    const a = await tab();
    void a.gen.generateAll();
    await wait(50);
    expect(calls).toHaveLength(1);
    await a.gen.runKept();
    const b = await tab();
    expect(b.store.getState().interrupted).toBeNull();
    expect(b.store.getState().save.message).toMatch(
      /A run is in progress in another tab of the studio: it is not offered for resuming here/,
    );
    await b.gen.generateAll();
    expect(calls).toHaveLength(1);
    expect(b.store.getState().run.error?.message).toMatch(/^A run is in progress in another tab/);
    expect(await b.persist.loadRun()).not.toBeNull(); // the live run's record is kept
    calls[0].resolve(result(calls[0].request));
    await wait(50);
    await a.gen.runKept();
    expect(held.size).toBe(0);
    const c = await tab();
    const third = c.gen.generateAll();
    await wait(50);
    expect(calls).toHaveLength(2); // once it ended, another tab may run
    calls[1].resolve(result(calls[1].request));
    await third;
  });
});

describe('storage errors stay visible', () => {
  it('takes that could not be saved (quota) keep the error through later autosaves until saved', async () => {
    const a = await tab();
    fail.saveTake = Object.assign(new Error('quota exceeded'), { name: 'QuotaExceededError' });
    void a.gen.generateAll();
    await wait(50);
    calls[0].resolve(result(calls[0].request));
    await wait(50);
    expect(a.store.getState().save.state).toBe('error');
    expect(a.store.getState().save.message).toMatch(
      /^Finished shots could not be saved: quota exceeded \(the browser's storage for this site is full/,
    );
    setGlobalCaption(a, 'later edit');
    await saved();
    expect(a.store.getState().save.state).toBe('error'); // before: "Saved", and the takes were gone after a reload
    expect(a.store.getState().save.message).toMatch(/^Autosave failed: quota exceeded/);
    fail.saveTake = null; // space freed
    setGlobalCaption(a, 'one more');
    await saved();
    expect(a.store.getState().save).toEqual({ state: 'saved', message: null });
    expect((await a.persist.loadTakes()).takes).toHaveLength(a.store.getState().shotIds.length);
  });
});

describe('damaged records', () => {
  it('a take with negative dimensions and settings with guidance null: skipped / reset, the rest loads', async () => {
    const a = await tab();
    setGlobalCaption(a, 'kept board');
    await saved();
    const shotId = a.store.getState().shotIds[0];
    const meta = {
      id: 't-bad',
      shotId,
      createdAt: 1,
      caption: 'c',
      globalCaption: 'g',
      seed: 1,
      frames: 1,
      width: -1,
      height: -32,
      model: 'm',
      steps: 4,
      guidance: 3,
      attention: { mode: 'moc', topK: 2, chunkFrames: 1, causal: true },
      runMs: 1,
      sparsity: 0,
    };
    const raw = await openDB('moc-studio', 1);
    await raw.put('takes', { format: 1, meta, pixels: new Uint8ClampedArray(128) }, 't-bad'); // 1 × −1 × −32 × 4 = 128
    await raw.put(
      'takes',
      { format: 1, meta: { ...meta, id: 't-ok', width: 2, height: 2, frames: 1 }, pixels: new Uint8ClampedArray(16) },
      't-ok',
    );
    await raw.put(
      'kv',
      {
        format: 1,
        settings: { steps: 5, guidance: null, attention: { mode: 'moc', topK: 2, chunkFrames: 1, causal: true } },
      },
      'settings',
    );
    raw.close();
    const b = await tab();
    expect(b.store.getState().board.globalCaption).toBe('kept board');
    expect(b.store.getState().takes[shotId].map((t) => t.id)).toEqual(['t-ok']);
    expect(b.store.getState().settings.steps).toBe(5);
    expect(b.store.getState().settings.guidance).toBe(3);
    expect(b.store.getState().save.message).toBe(
      '1 saved take(s) could not be read: a saved take is unreadable: width -1 is not a count in 1..4096; saved settings guidance null were unreadable and are back to their defaults',
    );
  });

  it('takes of shots no longer on the board are deleted at start', async () => {
    const a = await tab();
    await saved();
    const meta = {
      id: 't-orphan',
      shotId: 'gone',
      createdAt: 1,
      caption: 'c',
      globalCaption: 'g',
      seed: 1,
      frames: 1,
      width: 2,
      height: 2,
      model: 'm',
      steps: 4,
      guidance: 3,
      attention: { mode: 'moc', topK: 2, chunkFrames: 1, causal: true },
      runMs: 1,
      sparsity: 0,
    };
    setGlobalCaption(a, 'x');
    await saved();
    const raw = await openDB('moc-studio', 1);
    await raw.put('takes', { format: 1, meta, pixels: new Uint8ClampedArray(16) }, 't-orphan');
    raw.close();
    const b = await tab();
    expect(b.store.getState().takes.gone).toBeUndefined();
    expect((await b.persist.loadTakes()).takes.map((t) => t.meta.id)).not.toContain('t-orphan');
  });
});
