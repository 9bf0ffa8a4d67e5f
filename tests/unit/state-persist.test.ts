/** Autosave storage: migrations of stored records and a round trip through (fake) IndexedDB. */
import 'fake-indexeddb/auto';
import { openDB } from 'idb';
import { afterAll, describe, expect, it } from 'vitest';
import { defaultBoard } from '../../src/state/board-ops.ts';
import {
  DB_NAME,
  DB_VERSION,
  FORMAT,
  StorageError,
  clearRun,
  closeDb,
  deleteTakes,
  loadBoard,
  loadRun,
  loadSettings,
  loadTakes,
  migrateBoardRecord,
  migrateRunRecord,
  migrateSettings,
  migrateTakeRecord,
  saveBoard,
  saveRun,
  saveRunStep,
  saveSettings,
  saveTake,
} from '../../src/state/persist.ts';
import { DEFAULT_SETTINGS, type RunPlan, type TakeMeta } from '../../src/state/types.ts';

const board = { version: 1, globalCaption: 'g', shots: [{ caption: 'a', frames: 8, seed: 1 }] };

const meta = (id: string, frames = 2): TakeMeta => ({
  id,
  shotId: 's1',
  createdAt: 1,
  caption: 'a',
  globalCaption: 'g',
  seed: 1,
  frames,
  width: 2,
  height: 2,
  model: 'tiny',
  steps: 4,
  guidance: 3,
  attention: { mode: 'moc', topK: 2, chunkFrames: 1, causal: true },
  runMs: 10,
  sparsity: 0.5,
});

/** A regenerate run of shot s2 with shot s1 kept (its pixels in the request). */
const plan = (): RunPlan => ({
  kind: 'regenerate',
  request: {
    storyboard: {
      version: 1,
      globalCaption: 'g',
      shots: [
        { caption: 'a', frames: 1, seed: 1 },
        { caption: 'b', frames: 1, seed: 2 },
      ],
    },
    steps: 12,
    guidance: 3,
    attention: { mode: 'moc', topK: 2, chunkFrames: 1, causal: true },
    keep: [{ shot: 0, frames: new Uint8ClampedArray(16).fill(7) }],
    previewEvery: 1,
    traceEvery: 1,
  },
  shotIds: ['s1', 's2'],
  targets: ['s2'],
});
const runRecord = (patch: Record<string, unknown> = {}, planPatch: Record<string, unknown> = {}) => ({
  format: 1,
  id: 'r1',
  model: 'tiny',
  plan: { ...plan(), ...planPatch },
  savedAt: 1,
  ...patch,
});

describe('record migrations', () => {
  it('reads format 0 (a bare storyboard) and gives it ids', () => {
    const r = migrateBoardRecord(board);
    expect(r.format).toBe(FORMAT);
    expect(r.board).toEqual(board);
    expect(r.shotIds).toHaveLength(1);
    expect(r.chosen).toEqual({});
  });

  it('keeps format 1 ids and chosen takes, regenerating ids that do not match the shots', () => {
    const r = migrateBoardRecord({ format: 1, board, shotIds: ['x'], chosen: { x: 't' }, savedAt: 5 });
    expect(r.shotIds).toEqual(['x']);
    expect(r.chosen).toEqual({ x: 't' });
    const bad = migrateBoardRecord({ format: 1, board, shotIds: ['x', 'y'], chosen: {}, savedAt: 5 });
    expect(bad.shotIds).toHaveLength(1);
    expect(bad.shotIds[0]).not.toBe('x');
  });

  it('refuses a newer format and a broken storyboard with one line', () => {
    expect(() => migrateBoardRecord({ format: FORMAT + 1, board })).toThrow(StorageError);
    expect(() => migrateBoardRecord({ format: 1, board: { ...board, shots: [] } })).toThrow(
      /unreadable: storyboard.shots/,
    );
  });

  it('checks take pixels against their geometry', () => {
    expect(() => migrateTakeRecord({ format: 1, meta: meta('t'), pixels: new Uint8ClampedArray(3) })).toThrow(
      /bytes for 2×2×2/,
    );
    expect(migrateTakeRecord({ format: 1, meta: meta('t'), pixels: new Uint8ClampedArray(32) }).meta.id).toBe('t');
  });

  it('settings saved before attentionByHand count the options changed from the old defaults as set by hand', () => {
    const { attentionByHand: _, ...old } = DEFAULT_SETTINGS;
    expect(
      migrateSettings({ ...old, attention: { mode: 'moc', topK: 2, chunkFrames: 1, causal: true } }).attentionByHand,
    ).toEqual([]);
    const m = migrateSettings({ ...old, steps: 9, attention: { mode: 'moc', topK: 5, chunkFrames: 1, causal: false } });
    expect(m).toEqual({
      ...DEFAULT_SETTINGS,
      steps: 9,
      attention: { mode: 'moc', topK: 5, chunkFrames: 1, causal: false },
      attentionByHand: ['topK', 'causal'],
    });
    expect(
      migrateSettings({ ...DEFAULT_SETTINGS, attentionByHand: ['causal', 'bogus' as never] }).attentionByHand,
    ).toEqual(['causal']);
  });
});

describe('run record', () => {
  it('reads a format-1 record as it was written', () => {
    expect(migrateRunRecord(runRecord())).toEqual(runRecord());
    expect(migrateRunRecord(runRecord({ model: null })).model).toBeNull();
  });

  it('refuses a newer format with a StorageError that says so', () => {
    expect(() => migrateRunRecord(runRecord({ format: FORMAT + 1 }))).toThrow(StorageError);
    expect(() => migrateRunRecord(runRecord({ format: FORMAT + 1 }))).toThrow(
      `the saved run has format ${FORMAT + 1}, newer than this studio's ${FORMAT}`,
    );
  });

  it.each([
    ['no record at all', null, /it has no format/],
    ['a bare plan', plan(), /it has no format/],
    ['no id', runRecord({ id: 3 }), /it has no id/],
    ['a model that is not a name', runRecord({ model: 3 }), /its model is not a name/],
    ['an unknown kind', runRecord({}, { kind: 'bogus' }), /kind "bogus" is not one of all, regenerate, append/],
    [
      'a broken storyboard',
      runRecord({}, { request: { ...plan().request, storyboard: { version: 1, globalCaption: 'g', shots: [] } } }),
      /the saved run's storyboard is unreadable: storyboard.shots/,
    ],
    ['no steps', runRecord({}, { request: { ...plan().request, steps: 0 } }), /steps 0 is not a count of steps/],
    [
      'bad attention',
      runRecord({}, { request: { ...plan().request, attention: { mode: 'moc' } } }),
      /attention options/,
    ],
    [
      'kept pixels lost',
      runRecord({}, { request: { ...plan().request, keep: [{ shot: 0, frames: [1, 2] }] } }),
      /kept shots/,
    ],
    [
      'a kept shot past the storyboard',
      runRecord({}, { request: { ...plan().request, keep: [{ shot: 2, frames: new Uint8ClampedArray(4) }] } }),
      /kept shots/,
    ],
    ['shot ids that do not match the shots', runRecord({}, { shotIds: ['s1'] }), /shotIds are not 2 shot ids/],
    ['a target that is not a shot', runRecord({}, { targets: ['s9'] }), /targets are not shot ids/],
    ['no targets', runRecord({}, { targets: [] }), /targets are not shot ids/],
  ])('refuses %s with one line', (_, raw, why) => {
    let err: unknown;
    try {
      migrateRunRecord(raw);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(StorageError);
    expect((err as Error).message).toMatch(why);
    expect((err as Error).message).toMatch(/^the saved run/);
    expect((err as Error).message).not.toContain('\n');
  });
});

describe('IndexedDB round trip', () => {
  afterAll(() => closeDb());

  it('has nothing before the first save', async () => {
    expect(await loadBoard()).toBeNull();
    expect(await loadSettings()).toBeNull();
  });

  it('saves and loads the board, settings and takes', async () => {
    const b = defaultBoard();
    expect(await saveBoard(b, { [b.shotIds[0]]: 'take-1' }, 0)).toBe(1);
    await saveSettings({ ...DEFAULT_SETTINGS, steps: 7, attentionByHand: ['topK'] });
    await saveTake(meta('take-1'), new Uint8ClampedArray(32).fill(9));
    await saveTake(meta('take-2'), new Uint8ClampedArray(32).fill(3));
    const rec = await loadBoard();
    expect(rec?.board).toEqual(b.board);
    expect(rec?.shotIds).toEqual(b.shotIds);
    expect(rec?.chosen[b.shotIds[0]]).toBe('take-1');
    expect((await loadSettings())?.settings.steps).toBe(7);
    expect((await loadSettings())?.settings.attentionByHand).toEqual(['topK']);
    const { takes, skipped } = await loadTakes();
    expect(skipped).toEqual([]);
    expect(takes.map((t) => t.meta.id).sort()).toEqual(['take-1', 'take-2']);
    expect(takes.find((t) => t.meta.id === 'take-1')?.pixels[5]).toBe(9);
    await deleteTakes(['take-2']);
    expect((await loadTakes()).takes).toHaveLength(1);
  });

  it('keeps a run with its kept pixels and the step it reached, and forgets it', async () => {
    expect(await loadRun()).toBeNull();
    await saveRun('r1', 'tiny', plan());
    const saved = await loadRun();
    expect(saved).toMatchObject({ format: FORMAT, id: 'r1', model: 'tiny', plan: plan(), step: 0 });
    expect(saved!.plan.request.keep![0].frames).toBeInstanceOf(Uint8ClampedArray);
    await saveRunStep('r1', 5);
    expect((await loadRun())!.step).toBe(5);
    // another run's step, or one past the run's steps, is not this run's
    await saveRunStep('r0', 7);
    expect((await loadRun())!.step).toBe(0);
    await saveRunStep('r1', 13);
    expect((await loadRun())!.step).toBe(0);
    // a new run forgets the previous one's step
    await saveRunStep('r1', 5);
    await saveRun('r1', 'tiny', plan());
    expect((await loadRun())!.step).toBe(0);
    await clearRun();
    expect(await loadRun()).toBeNull();
  });

  it('a broken or newer run record throws a StorageError and leaves the board and takes readable', async () => {
    const raw = await openDB(DB_NAME, DB_VERSION);
    await raw.put('kv', runRecord({ format: FORMAT + 1 }), 'run');
    await expect(loadRun()).rejects.toThrow(
      `the saved run has format ${FORMAT + 1}, newer than this studio's ${FORMAT}`,
    );
    await raw.put('kv', { format: 1, id: 'r1', plan: 'garbage' }, 'run');
    await expect(loadRun()).rejects.toThrow(StorageError);
    expect(await loadBoard()).not.toBeNull();
    expect((await loadTakes()).takes).toHaveLength(1);
    raw.close();
    await clearRun();
  });
});
