/** Autosave storage: migrations of stored records and a round trip through (fake) IndexedDB. */
import 'fake-indexeddb/auto';
import { afterAll, describe, expect, it } from 'vitest';
import { defaultBoard } from '../../src/state/board-ops.ts';
import { FORMAT, StorageError, closeDb, deleteTakes, loadBoard, loadSettings, loadTakes, migrateBoardRecord, migrateSettings, migrateTakeRecord, saveBoard, saveSettings, saveTake } from '../../src/state/persist.ts';
import { DEFAULT_SETTINGS, type TakeMeta } from '../../src/state/types.ts';

const board = { version: 1, globalCaption: 'g', shots: [{ caption: 'a', frames: 8, seed: 1 }] };

const meta = (id: string, frames = 2): TakeMeta => ({
  id, shotId: 's1', createdAt: 1, caption: 'a', globalCaption: 'g', seed: 1, frames, width: 2, height: 2,
  model: 'tiny', steps: 4, guidance: 3, attention: { mode: 'moc', topK: 2, chunkFrames: 1, causal: true }, runMs: 10, sparsity: 0.5,
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
    expect(() => migrateBoardRecord({ format: 1, board: { ...board, shots: [] } })).toThrow(/unreadable: storyboard.shots/);
  });

  it('checks take pixels against their geometry', () => {
    expect(() => migrateTakeRecord({ format: 1, meta: meta('t'), pixels: new Uint8ClampedArray(3) })).toThrow(/bytes for 2×2×2/);
    expect(migrateTakeRecord({ format: 1, meta: meta('t'), pixels: new Uint8ClampedArray(32) }).meta.id).toBe('t');
  });

  it('settings saved before attentionByHand count the options changed from the old defaults as set by hand', () => {
    const { attentionByHand: _, ...old } = DEFAULT_SETTINGS;
    expect(migrateSettings({ ...old, attention: { mode: 'moc', topK: 2, chunkFrames: 1, causal: true } }).attentionByHand).toEqual([]);
    const m = migrateSettings({ ...old, steps: 9, attention: { mode: 'moc', topK: 5, chunkFrames: 1, causal: false } });
    expect(m).toEqual({ ...DEFAULT_SETTINGS, steps: 9, attention: { mode: 'moc', topK: 5, chunkFrames: 1, causal: false }, attentionByHand: ['topK', 'causal'] });
    expect(migrateSettings({ ...DEFAULT_SETTINGS, attentionByHand: ['causal', 'bogus' as never] }).attentionByHand).toEqual(['causal']);
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
    await saveBoard(b, { [b.shotIds[0]]: 'take-1' });
    await saveSettings({ ...DEFAULT_SETTINGS, steps: 7, attentionByHand: ['topK'] });
    await saveTake(meta('take-1'), new Uint8ClampedArray(32).fill(9));
    await saveTake(meta('take-2'), new Uint8ClampedArray(32).fill(3));
    const rec = await loadBoard();
    expect(rec?.board).toEqual(b.board);
    expect(rec?.shotIds).toEqual(b.shotIds);
    expect(rec?.chosen[b.shotIds[0]]).toBe('take-1');
    expect((await loadSettings())?.steps).toBe(7);
    expect((await loadSettings())?.attentionByHand).toEqual(['topK']);
    const { takes, skipped } = await loadTakes();
    expect(skipped).toEqual([]);
    expect(takes.map((t) => t.meta.id).sort()).toEqual(['take-1', 'take-2']);
    expect(takes.find((t) => t.meta.id === 'take-1')?.pixels[5]).toBe(9);
    await deleteTakes(['take-2']);
    expect((await loadTakes()).takes).toHaveLength(1);
  });
});
