/**
 * The generation slice: the model list and the loaded model, the panel's settings, and the run
 * in progress (phase, step, time left). Previews and finished pixels are in media.ts.
 */
import type { StateCreator } from 'zustand';
import type { ModelEntry, ModelInfo } from '../../model/api.ts';
import type { EngineErrorInfo, ModelLoadProgress } from '../../worker/protocol.ts';
import type { StudioState } from '../store.ts';
import { DEFAULT_SETTINGS, type GenerationSettings, type RunKind, type RunPhase } from '../types.ts';

export type ModelIndexState = 'loading' | 'ready' | 'missing';
export type ModelPhase = 'none' | 'loading' | 'ready' | 'error';

export interface ModelStatus {
  /** public/models/index.json: still loading, read, or absent/unreadable (`indexError` says why). */
  index: ModelIndexState;
  indexError: string | null;
  entries: ModelEntry[];
  phase: ModelPhase;
  /** Entry name of the model loaded or loading. */
  name: string | null;
  progress: ModelLoadProgress | null;
  info: ModelInfo | null;
  error: EngineErrorInfo | null;
}

export interface RunStatus {
  phase: RunPhase;
  kind: RunKind;
  /** Shot ids being sampled in this run. */
  shotIds: string[];
  step: number;
  steps: number;
  startedAt: number;
  elapsedMs: number;
  /** Estimated ms left (null until one step has finished). */
  etaMs: number | null;
  /** Wall ms of the latest step. */
  msPerStep: number | null;
  /** What a failed run said, in one line. */
  error: EngineErrorInfo | null;
}

export interface GenerationSlice {
  model: ModelStatus;
  settings: GenerationSettings;
  run: RunStatus;
  setModel(patch: Partial<ModelStatus>): void;
  setSettings(patch: Partial<GenerationSettings>): void;
  setAttention(patch: Partial<GenerationSettings['attention']>): void;
  setRun(patch: Partial<RunStatus>): void;
}

export const initialModel: ModelStatus = {
  index: 'loading',
  indexError: null,
  entries: [],
  phase: 'none',
  name: null,
  progress: null,
  info: null,
  error: null,
};

export const initialRun: RunStatus = {
  phase: 'idle',
  kind: 'all',
  shotIds: [],
  step: 0,
  steps: 0,
  startedAt: 0,
  elapsedMs: 0,
  etaMs: null,
  msPerStep: null,
  error: null,
};

/** True while a run holds the engine (the Generate buttons are off, Cancel is on). */
export function isRunning(phase: RunPhase): boolean {
  return phase === 'preparing' || phase === 'running' || phase === 'cancelling';
}

export const createGenerationSlice: StateCreator<StudioState, [], [], GenerationSlice> = (set) => ({
  model: initialModel,
  settings: DEFAULT_SETTINGS,
  run: initialRun,
  setModel: (patch) => set((s) => ({ model: { ...s.model, ...patch } })),
  setSettings: (patch) => set((s) => ({ settings: { ...s.settings, ...patch } })),
  setAttention: (patch) => set((s) => ({ settings: { ...s.settings, attention: { ...s.settings.attention, ...patch } } })),
  setRun: (patch) => set((s) => ({ run: { ...s.run, ...patch } })),
});
