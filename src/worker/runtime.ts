/**
 * The worker's bridge to the model code in src/model: turn fetched model files into a model on
 * the GPU, and run `generate` on it. Kept apart from in-thread.ts so the engine api (errors,
 * cancellation, busy/no-model checks) reads the same whatever the model's entry points are.
 */
import type { Engine } from '../engine/engine.ts';
import type { GenerateProgress, GenerateRequest, GenerateResult, ModelInfo } from '../model/api.ts';
import { WorkerError } from './errors.ts';
import type { ModelFiles } from './model-files.ts';

export interface LoadedModel {
  info: ModelInfo;
  /** Whatever src/model's loader returned (weights on the GPU, config, tokenizer). */
  handle: unknown;
  dispose(): void;
}

/**
 * Builds the model from its files on `engine`.
 * @throws WorkerError `model-invalid` when the files do not make a model.
 */
export async function loadModelFromFiles(_engine: Engine, _files: ModelFiles, name: string): Promise<LoadedModel> {
  throw new WorkerError('model-invalid', `model "${name}": this build has no model runtime yet (src/model/generate.ts)`);
}

/**
 * Runs the sampler. `onProgress` is called after every step; it throws to stop the run.
 * @throws whatever src/model's generate throws (mapped to WorkerError codes by the caller).
 */
export async function runGenerate(
  _engine: Engine,
  _model: LoadedModel,
  _request: GenerateRequest,
  _onProgress: (p: GenerateProgress) => void,
  _signal: AbortSignal,
): Promise<GenerateResult> {
  throw new WorkerError('no-model', 'this build has no model runtime yet (src/model/generate.ts)');
}
