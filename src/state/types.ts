/** Plain data types shared by the store's slices, the actions and persistence. */
import type { AttentionOptions, GenerateRequest } from '../model/api.ts';

/** What the generation panel sets. */
export interface GenerationSettings {
  /** Name of the model entry (public/models/index.json) to use; null: the index's default. */
  model: string | null;
  steps: number;
  guidance: number;
  /** Until a model has loaded, the built-in defaults; then that model's (config.json) save what was set by hand. */
  attention: AttentionOptions;
  /**
   * The attention options set by hand for the selected model: they survive the model loading
   * again (a reload, a device loss); the others follow the model's defaults. Choosing another
   * model clears them.
   */
  attentionByHand: AttentionKey[];
}

export type AttentionKey = keyof AttentionOptions;
export const ATTENTION_KEYS: readonly AttentionKey[] = ['mode', 'topK', 'chunkFrames', 'causal'];

export const DEFAULT_SETTINGS: GenerationSettings = {
  model: null,
  steps: 16,
  guidance: 3,
  attention: { mode: 'moc', topK: 2, chunkFrames: 1, causal: true },
  attentionByHand: [],
};

/** One generated version of one shot. Its pixels live in media.ts and IndexedDB, not in the store. */
export interface TakeMeta {
  id: string;
  shotId: string;
  createdAt: number;
  /** The shot as it was generated (to tell when the storyboard has moved on). */
  caption: string;
  globalCaption: string;
  seed: number;
  frames: number;
  width: number;
  height: number;
  /** How it was made. */
  model: string;
  steps: number;
  guidance: number;
  attention: AttentionOptions;
  /** Wall time of the whole run that produced it, and that run's attention sparsity. */
  runMs: number;
  sparsity: number;
}

/** What a run is for: every shot, one shot again (others kept), or a new shot at the end. */
export const RUN_KINDS = ['all', 'regenerate', 'append'] as const;
export type RunKind = (typeof RUN_KINDS)[number];

/** What a run will do, worked out from the board and the takes before it starts (kept in IndexedDB while it runs). */
export interface RunPlan {
  kind: RunKind;
  request: GenerateRequest;
  /** Shot ids in board order at the time of the request (index s of the request → shotIds[s]). */
  shotIds: string[];
  /** Shot ids that will be sampled. */
  targets: string[];
}

export type RunPhase = 'idle' | 'preparing' | 'running' | 'cancelling' | 'done' | 'cancelled' | 'error';
