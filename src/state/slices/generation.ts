/**
 * The generation slice: the model list and the loaded model, the panel's settings (the model's
 * attention defaults under what was set by hand), the run in progress (phase, step, time left)
 * and a run a device loss or worker crash interrupted. Previews and finished pixels are in media.ts.
 */
import type { StateCreator } from 'zustand';
import type { AttentionOptions, LoadedModelInfo, ModelEntry } from '../../model/api.ts';
import type { EngineErrorInfo, ModelLoadProgress } from '../../worker/protocol.ts';
import type { StudioState } from '../store.ts';
import { DEFAULT_SETTINGS, type AttentionKey, type GenerationSettings, type RunKind, type RunPhase } from '../types.ts';

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
  info: LoadedModelInfo | null;
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
  /** Date.now() when the latest step ended (or the run started): the step in progress began then. */
  stepStartedAt: number;
  /** ms per step expected before the run started (run-estimate.ts), null when nothing was known. */
  expectedMsPerStep: number | null;
  /** What a failed run said, in one line. */
  error: EngineErrorInfo | null;
}

/** A run that a device loss or a worker crash cut short, which the studio offers to resume. */
export interface InterruptedRun {
  kind: RunKind;
  /** Shots it was sampling, the step it reached and its steps. */
  shots: number;
  step: number;
  steps: number;
}

export interface GenerationSlice {
  model: ModelStatus;
  settings: GenerationSettings;
  run: RunStatus;
  interrupted: InterruptedRun | null;
  setModel(patch: Partial<ModelStatus>): void;
  setSettings(patch: Partial<GenerationSettings>): void;
  /** Attention options set by hand (the panel): remembered in `settings.attentionByHand`. */
  setAttention(patch: Partial<AttentionOptions>): void;
  /** A model loaded: its attention defaults replace every option not set by hand. */
  applyModelDefaults(defaults: AttentionOptions): void;
  /** Names the model to use; another model than the current one forgets the hand-set options and the interrupted run. */
  selectModel(name: string): void;
  setRun(patch: Partial<RunStatus>): void;
  setInterrupted(interrupted: InterruptedRun | null): void;
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
  stepStartedAt: 0,
  expectedMsPerStep: null,
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
  interrupted: null,
  setModel: (patch) => set((s) => ({ model: { ...s.model, ...patch } })),
  setSettings: (patch) => set((s) => ({ settings: { ...s.settings, ...patch } })),
  setAttention: (patch) =>
    set((s) => {
      const byHand = s.settings.attentionByHand;
      const added = (Object.keys(patch) as AttentionKey[]).filter((k) => !byHand.includes(k));
      return {
        settings: {
          ...s.settings,
          attention: { ...s.settings.attention, ...patch },
          attentionByHand: [...byHand, ...added],
        },
      };
    }),
  applyModelDefaults: (defaults) =>
    set((s) => {
      const { attention, attentionByHand } = s.settings;
      const byHand = Object.fromEntries(attentionByHand.map((k) => [k, attention[k]])) as Partial<AttentionOptions>;
      return { settings: { ...s.settings, attention: { ...defaults, ...byHand } } };
    }),
  selectModel: (name) =>
    set((s) => {
      const current = s.model.name ?? s.settings.model;
      if (name === current) return { settings: { ...s.settings, model: name } };
      return { settings: { ...s.settings, model: name, attentionByHand: [] }, interrupted: null };
    }),
  setRun: (patch) => set((s) => ({ run: { ...s.run, ...patch } })),
  setInterrupted: (interrupted) => set({ interrupted }),
});
