/** The storyboard slice and its pure edits: add, duplicate, delete, reorder, undo/redo, coalescing. */
import { describe, expect, it } from 'vitest';
import {
  addShot,
  defaultBoard,
  deleteShot,
  duplicateShot,
  moveShot,
  setGlobalCaption,
  shotOffsets,
  updateShot,
  withIds,
} from '../../src/state/board-ops.ts';
import { COALESCE_MS, HISTORY_LIMIT } from '../../src/state/slices/storyboard.ts';
import { createStudioStore } from '../../src/state/store.ts';

const captions = (s: { board: { shots: { caption: string }[] } }) => s.board.shots.map((x) => x.caption);

describe('board ops', () => {
  const two = withIds({
    version: 1,
    globalCaption: 'g',
    shots: [
      { caption: 'a', frames: 8, seed: 1 },
      { caption: 'b', frames: 16, seed: 2 },
    ],
  });

  it('adds after a shot with its neighbour’s length and a fresh id', () => {
    const b = addShot(two, 0, 'new', 7);
    expect(captions(b)).toEqual(['a', '', 'b']);
    expect(b.board.shots[1]).toEqual({ caption: '', frames: 8, seed: 7 });
    expect(b.shotIds[1]).toBe('new');
    expect(captions(two)).toEqual(['a', 'b']); // not mutated
  });

  it('duplicates right after the original', () => {
    const b = duplicateShot(two, 0, 'copy');
    expect(captions(b)).toEqual(['a', 'a', 'b']);
    expect(b.shotIds).toEqual([two.shotIds[0], 'copy', two.shotIds[1]]);
  });

  it('deletes, but never the last shot', () => {
    const one = deleteShot(two, 0);
    expect(captions(one)).toEqual(['b']);
    expect(deleteShot(one, 0)).toBe(one);
  });

  it('moves shots with their ids, clamping the destination', () => {
    const three = addShot(two, 1, 'c');
    const b = moveShot(three, 2, 0);
    expect(captions(b)).toEqual(['', 'a', 'b']);
    expect(b.shotIds[0]).toBe('c');
    expect(captions(moveShot(three, 0, 99))).toEqual(['b', '', 'a']);
    expect(moveShot(three, 1, 1)).toBe(three);
  });

  it('clamps frames and seeds and keeps old values for NaN', () => {
    expect(updateShot(two, 0, { frames: 999 }).board.shots[0].frames).toBe(64);
    expect(updateShot(two, 0, { frames: 0 }).board.shots[0].frames).toBe(1);
    expect(updateShot(two, 0, { frames: Number.NaN }).board.shots[0].frames).toBe(8);
    expect(updateShot(two, 0, { seed: -5 }).board.shots[0].seed).toBe(0);
  });

  it('offsets shots on the joint timeline', () => {
    expect(shotOffsets(two.board)).toEqual([0, 8, 24]);
  });

  it('starts with a two-shot default board', () => {
    const b = defaultBoard();
    expect(b.board.shots).toHaveLength(2);
    expect(new Set(b.shotIds).size).toBe(2);
  });
});

describe('storyboard slice', () => {
  it('undoes and redoes edits in order', () => {
    const store = createStudioStore();
    const st = () => store.getState();
    const start = st().board;
    st().edit((b) => setGlobalCaption(b, 'one'));
    st().edit((b) => addShot(b));
    expect(st().board.shots).toHaveLength(3);
    st().undo();
    expect(st().board.shots).toHaveLength(2);
    expect(st().board.globalCaption).toBe('one');
    st().undo();
    expect(st().board).toBe(start);
    st().undo(); // nothing left: no-op
    expect(st().board).toBe(start);
    st().redo();
    st().redo();
    expect(st().board.shots).toHaveLength(3);
    expect(st().future).toHaveLength(0);
  });

  it('merges quick edits with the same key into one undo step', () => {
    const store = createStudioStore();
    const st = () => store.getState();
    const id = st().shotIds[0];
    const before = st().board.shots[0].caption;
    st().edit((b) => updateShot(b, 0, { caption: 'C' }), `caption:${id}`, 1000);
    st().edit((b) => updateShot(b, 0, { caption: 'Ch' }), `caption:${id}`, 1000 + COALESCE_MS / 2);
    st().edit((b) => updateShot(b, 0, { caption: 'Cha' }), `caption:${id}`, 1000 + COALESCE_MS);
    expect(st().past).toHaveLength(1);
    // after a pause, a new step
    st().edit((b) => updateShot(b, 0, { caption: 'Char' }), `caption:${id}`, 1000 + 3 * COALESCE_MS);
    expect(st().past).toHaveLength(2);
    st().undo();
    expect(st().board.shots[0].caption).toBe('Cha');
    st().undo();
    expect(st().board.shots[0].caption).toBe(before);
  });

  it('drops redo after a new edit, ignores no-op edits, and caps history', () => {
    const store = createStudioStore();
    const st = () => store.getState();
    st().edit((b) => setGlobalCaption(b, 'x'));
    st().undo();
    expect(st().future).toHaveLength(1);
    st().edit((b) => setGlobalCaption(b, 'y'));
    expect(st().future).toHaveLength(0);
    st().edit((b) => b);
    expect(st().past).toHaveLength(1);
    for (let i = 0; i < HISTORY_LIMIT + 20; i++) st().edit((b) => setGlobalCaption(b, `v${i}`));
    expect(st().past).toHaveLength(HISTORY_LIMIT);
  });

  it('replaces the board undoably (import) or not (restore)', () => {
    const store = createStudioStore();
    const st = () => store.getState();
    const old = st().board;
    const imported = withIds({ version: 1, globalCaption: 'imported', shots: [{ caption: 'x', frames: 4, seed: 0 }] });
    st().replaceBoard(imported, true);
    expect(st().board.globalCaption).toBe('imported');
    st().undo();
    expect(st().board).toBe(old);
    st().replaceBoard(imported, false);
    expect(st().past).toHaveLength(0);
  });
});
