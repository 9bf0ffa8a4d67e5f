/**
 * The player slice (play head over the joint timeline of all shots) and the teaching slice
 * (which query token is being explained, and the explanation the worker computed).
 */
import type { StateCreator } from 'zustand';
import type { EngineErrorInfo, Explanation } from '../../worker/protocol.ts';
import type { StudioState } from '../store.ts';

export interface PlayerState {
  /** Frame on the joint timeline (0-based). */
  frame: number;
  playing: boolean;
  loop: boolean;
}

/** A query token: patch `patch` (row-major over the patch grid) of frame `frame` of shot `shotId`. */
export interface TeachQuery {
  shotId: string;
  frame: number;
  patch: number;
}

export interface TeachState {
  open: boolean;
  query: TeachQuery | null;
  phase: 'idle' | 'computing' | 'ready' | 'error';
  result: Explanation | null;
  /** Why the seeded example stands in for the network's numbers (no video yet, no model, …); null when the network's are shown. */
  fallback: string | null;
  /** Layer to explain with the network (0-based); null: the last. */
  layer: number | null;
  error: EngineErrorInfo | null;
  /** Which step of the walk-through is shown (0…4). */
  stage: number;
}

export interface PlayerSlice {
  player: PlayerState;
  teach: TeachState;
  setPlayer(patch: Partial<PlayerState>): void;
  setTeach(patch: Partial<TeachState>): void;
}

export const createPlayerSlice: StateCreator<StudioState, [], [], PlayerSlice> = (set) => ({
  player: { frame: 0, playing: false, loop: true },
  teach: { open: false, query: null, phase: 'idle', result: null, fallback: null, layer: null, error: null, stage: 0 },
  setPlayer: (patch) => set((s) => ({ player: { ...s.player, ...patch } })),
  setTeach: (patch) => set((s) => ({ teach: { ...s.teach, ...patch } })),
});
