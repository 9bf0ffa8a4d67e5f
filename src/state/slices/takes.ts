/**
 * The takes slice: every generated version of every shot (metadata only; pixels are in
 * media.ts and IndexedDB), which version each shot uses, and a counter that moves whenever
 * pixels change (finished takes or live previews) so frame views know to redraw.
 */
import type { StateCreator } from 'zustand';
import { updateShot } from '../board-ops.ts';
import type { StudioState } from '../store.ts';
import type { TakeMeta } from '../types.ts';

/** Takes kept per shot; older ones beyond this are dropped (and deleted from storage). */
export const MAX_TAKES_PER_SHOT = 8;

export interface TakesSlice {
  /** Versions per shot id, oldest first. */
  takes: Record<string, TakeMeta[]>;
  /** The version each shot plays and exports. */
  chosen: Record<string, string>;
  mediaVersion: number;
  /** Adds finished takes (each becomes its shot's chosen take); returns the ids dropped as too old. */
  addTakes(metas: readonly TakeMeta[]): string[];
  /**
   * Keeps one version: it plays and exports, and the shot's seed goes back to the one that made
   * it (one undoable edit), so a version kept again is not "changed since generated".
   */
  chooseTake(shotId: string, takeId: string): void;
  /** Removes one take; the shot falls back to its newest remaining take. */
  removeTake(shotId: string, takeId: string): void;
  /** Replaces everything (restore from storage). */
  setTakes(takes: Record<string, TakeMeta[]>, chosen: Record<string, string>): void;
  bumpMedia(): void;
}

export const createTakesSlice: StateCreator<StudioState, [], [], TakesSlice> = (set, get) => ({
  takes: {},
  chosen: {},
  mediaVersion: 0,

  addTakes(metas) {
    const takes = { ...get().takes };
    const chosen = { ...get().chosen };
    const dropped: string[] = [];
    for (const m of metas) {
      const list = [...(takes[m.shotId] ?? []), m];
      while (list.length > MAX_TAKES_PER_SHOT) {
        const old = list.findIndex((t) => t.id !== chosen[m.shotId] && t.id !== m.id);
        dropped.push(list.splice(old < 0 ? 0 : old, 1)[0].id);
      }
      takes[m.shotId] = list;
      chosen[m.shotId] = m.id;
    }
    set((s) => ({ takes, chosen, mediaVersion: s.mediaVersion + 1 }));
    return dropped;
  },

  chooseTake(shotId, takeId) {
    const take = get().takes[shotId]?.find((t) => t.id === takeId);
    if (!take) return;
    set((s) => ({ chosen: { ...s.chosen, [shotId]: takeId }, mediaVersion: s.mediaVersion + 1 }));
    const index = get().shotIds.indexOf(shotId);
    if (index >= 0 && get().board.shots[index].seed !== take.seed)
      get().edit((b) => updateShot(b, index, { seed: take.seed }));
  },

  removeTake(shotId, takeId) {
    const list = (get().takes[shotId] ?? []).filter((t) => t.id !== takeId);
    const chosen = { ...get().chosen };
    if (chosen[shotId] === takeId) {
      if (list.length) chosen[shotId] = list[list.length - 1].id;
      else delete chosen[shotId];
    }
    const takes = { ...get().takes, [shotId]: list };
    if (!list.length) delete takes[shotId];
    set((s) => ({ takes, chosen, mediaVersion: s.mediaVersion + 1 }));
  },

  setTakes: (takes, chosen) => set((s) => ({ takes, chosen, mediaVersion: s.mediaVersion + 1 })),
  bumpMedia: () => set((s) => ({ mediaVersion: s.mediaVersion + 1 })),
});
