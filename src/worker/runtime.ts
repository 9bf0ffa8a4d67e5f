/**
 * The worker's bridge to the model code in src/model: turn fetched model files into a
 * Generator on the GPU (weights.ts + generate.ts), and run requests on it, mapping the model's
 * input errors onto the protocol's codes. Kept apart from in-thread.ts so the engine api
 * (busy/no-model checks, cancellation) reads the same whatever the model's entry points are.
 */
import type { Engine } from '../engine/engine.ts';
import type { GenerateProgress, GenerateRequest, GenerateResult, LoadedModelInfo } from '../model/api.ts';
import { Generator } from '../model/generate.ts';
import { loadModel } from '../model/weights.ts';
import { inputToWorkerError } from './errors.ts';
import { NetworkExplainer } from './explain-network.ts';
import type { ModelFiles } from './model-files.ts';
import type { ExplainRequest, Explanation } from './protocol.ts';

export interface LoadedModel {
  info: LoadedModelInfo;
  generator: Generator;
  /** Teaching mode on this model (keeps the last video's capture). */
  explainer: NetworkExplainer;
  dispose(): void;
}

/**
 * Validates the files (weights.ts) and uploads the model to `engine`.
 * @throws WorkerError `model-invalid` when the files do not make a model; the engine's own
 *   errors (unsupported, validation) pass through for the caller to map.
 */
export async function loadModelFromFiles(engine: Engine, files: ModelFiles, name: string): Promise<LoadedModel> {
  let host;
  try {
    host = await loadModel(async (file) => {
      const buf = files.get(file);
      if (!buf) throw new Error('not listed in manifest.json');
      return new Uint8Array(buf);
    }, `model "${name}"`);
  } catch (e) {
    throw inputToWorkerError(e, 'model-invalid');
  }
  const generator = Generator.create(engine, host);
  const info = { ...generator.info, attention: generator.defaultAttention() };
  const explainer = new NetworkExplainer(generator);
  return {
    info,
    generator,
    explainer,
    dispose: () => {
      explainer.clear();
      generator.dispose();
    },
  };
}

/** Runs `fn`, turning the model's input errors (bad storyboard, caption or option) into `bad-request`. */
async function modelInput<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    throw inputToWorkerError(e, 'bad-request');
  }
}

/**
 * Runs the sampler. `onProgress` is called after every step; `signal` cancels between model calls.
 * @throws WorkerError `bad-request` for a storyboard, caption or option the model refuses;
 *   anything else as the model threw it.
 */
export async function runGenerate(
  model: LoadedModel,
  request: GenerateRequest,
  onProgress: (p: GenerateProgress) => void,
  signal: AbortSignal,
): Promise<GenerateResult> {
  return modelInput(() => model.generator.generate(request, onProgress, signal));
}

/**
 * Teaching mode with the network's numbers (`request.network`): one forward pass on the video.
 * @throws WorkerError `bad-request` for a query, video, caption or option the model refuses;
 *   anything else as the model threw it.
 */
export function runExplain(model: LoadedModel, request: ExplainRequest): Promise<Explanation> {
  return modelInput(() => model.explainer.explain(request));
}
