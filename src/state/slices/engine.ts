/** The engine slice: the worker's phase, the adapter and the smoke check. */
import type { StateCreator } from 'zustand';
import type { AdapterSummary, EngineErrorInfo, EngineFeatures, SmokeResult } from '../../worker/protocol.ts';
import type { StudioState } from '../store.ts';

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
  /** How many times the GPU device was lost and the engine restarted since the page loaded. */
  recoveries: number;
  /** How many times the engine worker crashed and was restarted since the page loaded. */
  crashes: number;
}

export interface EngineSlice {
  engine: EngineStatus;
  /** Merges `patch` into the engine status. */
  setEngine(patch: Partial<EngineStatus>): void;
}

export const initialEngineStatus: EngineStatus = {
  phase: 'idle',
  step: null,
  adapterName: null,
  adapter: null,
  features: null,
  smoke: null,
  error: null,
  recoveries: 0,
  crashes: 0,
};

export const createEngineSlice: StateCreator<StudioState, [], [], EngineSlice> = (set) => ({
  engine: initialEngineStatus,
  setEngine: (patch) => set((s) => ({ engine: { ...s.engine, ...patch } })),
});
