/**
 * The studio's one zustand store, made of typed slices of small, serialisable state.
 * Tensors, GPU handles and the worker never live here; async actions (actions/*.ts) hold them
 * and write plain results into the store.
 */
import { create, type StateCreator } from 'zustand';
import type { AdapterSummary, EngineErrorInfo, EngineFeatures, SmokeResult } from '../worker/protocol.ts';

/** idle → starting → ready, or error at any point (and back to starting on retry). */
export type EnginePhase = 'idle' | 'starting' | 'ready' | 'error';

export interface EngineStatus {
  phase: EnginePhase;
  /** What `starting` is doing right now, in words. */
  step: string | null;
  adapterName: string | null;
  adapter: AdapterSummary | null;
  features: EngineFeatures | null;
  smoke: SmokeResult | null;
  error: EngineErrorInfo | null;
}

export interface EngineSlice {
  engine: EngineStatus;
  /** Merges `patch` into the engine status. */
  setEngine(patch: Partial<EngineStatus>): void;
}

export type StudioState = EngineSlice;

export const initialEngineStatus: EngineStatus = {
  phase: 'idle',
  step: null,
  adapterName: null,
  adapter: null,
  features: null,
  smoke: null,
  error: null,
};

const createEngineSlice: StateCreator<StudioState, [], [], EngineSlice> = (set) => ({
  engine: initialEngineStatus,
  setEngine: (patch) => set((s) => ({ engine: { ...s.engine, ...patch } })),
});

export const useStudio = create<StudioState>()((...a) => ({
  ...createEngineSlice(...a),
}));
