/**
 * The storyboard slice: the board being edited, its undo/redo history and how durations are
 * shown. Every change goes through `edit(fn, key)`: `fn` is a pure edit from board-ops.ts; edits
 * with the same `key` within COALESCE_MS merge into one undo step (typing a caption is one step,
 * not one per letter).
 */
import type { StateCreator } from 'zustand';
import type { Storyboard } from '../../model/storyboard.ts';
import { defaultBoard, sameBoard, type Board } from '../board-ops.ts';
import type { StudioState } from '../store.ts';

export const HISTORY_LIMIT = 200;
export const COALESCE_MS = 1000;

export type DurationUnit = 'frames' | 'seconds';

/** One entry of public/storyboards/index.json. */
export interface SampleEntry {
  name: string;
  /** Absolute URL of the storyboard JSON. */
  url: string;
  description: string;
}
export type SaveState = 'loading' | 'saved' | 'pending' | 'error' | 'off';

export interface StoryboardSlice {
  board: Storyboard;
  shotIds: string[];
  past: Board[];
  future: Board[];
  /** The key and time of the last edit (for coalescing); null after undo, redo or a load. */
  lastEdit: { key: string; at: number } | null;
  durationUnit: DurationUnit;
  /** Autosave state, for the "Saved" indicator. */
  save: { state: SaveState; message: string | null };
  /** One line about the last import or sample load that failed (the board is left as it was). */
  importError: string | null;
  /** The sample storyboards (public/storyboards/index.json): loading, listed, or none shipped. */
  samples: { state: 'loading' | 'ready' | 'missing'; entries: SampleEntry[] };

  /** Applies a pure edit; `key` (e.g. `caption:<shotId>`) merges quick successive edits. */
  edit(fn: (b: Board) => Board, key?: string, now?: number): void;
  /** Replaces the whole board (import, sample, restore); `undoable` keeps the old one in history. */
  replaceBoard(b: Board, undoable: boolean): void;
  undo(): void;
  redo(): void;
  setDurationUnit(u: DurationUnit): void;
  setSave(state: SaveState, message?: string | null): void;
  setImportError(message: string | null): void;
  setSamples(samples: StoryboardSlice['samples']): void;
}

const current = (s: StoryboardSlice): Board => ({ board: s.board, shotIds: s.shotIds });

export const createStoryboardSlice: StateCreator<StudioState, [], [], StoryboardSlice> = (set, get) => {
  const initial = defaultBoard();
  return {
    board: initial.board,
    shotIds: initial.shotIds,
    past: [],
    future: [],
    lastEdit: null,
    durationUnit: 'frames',
    save: { state: 'loading', message: null },
    importError: null,
    samples: { state: 'loading', entries: [] },

    edit(fn, key, now = Date.now()) {
      const s = get();
      const before = current(s);
      const after = fn(before);
      if (sameBoard(before, after)) return;
      const merge =
        key !== undefined && s.lastEdit?.key === key && now - s.lastEdit.at < COALESCE_MS && s.past.length > 0;
      set({
        board: after.board,
        shotIds: after.shotIds,
        past: merge ? s.past : [...s.past, before].slice(-HISTORY_LIMIT),
        future: [],
        lastEdit: key === undefined ? null : { key, at: now },
        importError: null,
      });
    },

    replaceBoard(b, undoable) {
      const s = get();
      set({
        board: b.board,
        shotIds: b.shotIds,
        past: undoable ? [...s.past, current(s)].slice(-HISTORY_LIMIT) : [],
        future: [],
        lastEdit: null,
        importError: null,
      });
    },

    undo() {
      const s = get();
      const prev = s.past[s.past.length - 1];
      if (!prev) return;
      set({
        board: prev.board,
        shotIds: prev.shotIds,
        past: s.past.slice(0, -1),
        future: [current(s), ...s.future],
        lastEdit: null,
      });
    },

    redo() {
      const s = get();
      const next = s.future[0];
      if (!next) return;
      set({
        board: next.board,
        shotIds: next.shotIds,
        past: [...s.past, current(s)],
        future: s.future.slice(1),
        lastEdit: null,
      });
    },

    setDurationUnit: (durationUnit) => set({ durationUnit }),
    setSave: (state, message = null) => set({ save: { state, message } }),
    setImportError: (importError) => set({ importError }),
    setSamples: (samples) => set({ samples }),
  };
};
