/**
 * config.json of a model folder (written by train/export.py): train/model.py's ModelConfig
 * (snake_case, as Python writes it) plus the format header. `parseModelConfig` validates it and
 * returns the camelCase `ModelConfig` the TypeScript model uses; `expectedWeights` lists every
 * tensor name and shape the checkpoint must hold (train/model.py's docstring, in code).
 *
 * Legend: V vocabulary, L caption tokens, d width, D = d/H head dim, P = 3·p² patch values,
 * h = mlp_ratio·d hidden width.
 */
import { z } from './zod.ts';
import { InputError } from './errors.ts';

export const MODEL_FORMAT = 'moc-dit';
export const MODEL_FORMAT_VERSION = 1;

/** Frames per shot a model was trained on: min = max unless it trained on varied lengths. */
export interface TrainFrames {
  min: number;
  max: number;
}

/**
 * Which view of q and k routing scores with (MOC.md §3b, train/model.py ROUTE_VIEWS): 'rotary'
 * as rotated for attention (the v1 meaning, and the default where config.json does not say);
 * 'spatial' rotated by y and x only (before the temporal rotation); 'unrotated' before any
 * rotation. Attention always uses the rotated q and k.
 */
export const ROUTE_VIEWS = ['rotary', 'spatial', 'unrotated'] as const;
export type RouteView = (typeof ROUTE_VIEWS)[number];

/** What a routing view means, in a phrase for the studio (model info, teaching mode). */
export function routeViewText(view: RouteView): string {
  switch (view) {
    case 'rotary':
      return 'q and k as rotated for attention (time and position in the frame)';
    case 'spatial':
      return 'q and k rotated by position in the frame only, without the time rotation';
    case 'unrotated':
      return 'q and k before any rotation';
  }
}

export interface ModelConfig {
  name: string;
  vocabSize: number; // V
  textLen: number; // L
  imageSize: number;
  patchSize: number; // p
  channels: number;
  dim: number; // d
  depth: number;
  heads: number; // H
  mlpRatio: number;
  ropeTheta: number;
  tFreqDim: number;
  /** MoC defaults (a request may override them). */
  chunkFrames: number;
  topK: number;
  causal: boolean;
  /**
   * Trained context-causal (config.json `causal_text`, MOC.md §3b; false when absent): MoC queries
   * see only the captions of their own and earlier shots, so with causal routing no token depends
   * on a later shot and the keys and values of kept earlier shots can be cached.
   */
  causalText: boolean;
  /**
   * What the network outputs: 'v' the velocity, or 'x' the clean frames x̂0, which forward turns
   * into v = (x_t − x̂0) / max(t, tMin) (train/model.py ModelConfig.prediction).
   */
  prediction: 'v' | 'x';
  tMin: number;
  /** The view of q, k routing scores with (config.json `route_view`, default 'rotary'). */
  routeView: RouteView;
  fps: number;
  /**
   * The shot shape it was trained on (config.json `train_shots`: shots per sample; `train_frames`,
   * or `train_frames_min` … `train_frames_max` for a run with varied shot lengths), null where the
   * file does not say. Other shot lengths run but come out worse (docs/MODEL_CARD.md, Limits).
   */
  trainShots: number | null;
  trainFrames: TrainFrames | null;
  // derived
  grid: number; // G = imageSize / patchSize
  headDim: number; // D
  patchDim: number; // P
  mlpHidden: number; // h
}

/**
 * Bounds on every number: far above any model this project trains (moc-base: dim 256, depth 8),
 * low enough that a hostile or mistyped config.json is refused in one line naming the key instead
 * of allocating without end (depth 1e6 took 37 s and 3 GB before it failed).
 */
const int = (min: number, max: number) => {
  const msg = `must be an integer in ${min}..${max}`;
  return z.number(msg).int(msg).min(min, msg).max(max, msg);
};
const num = (min: number, max: number, minText = `${min}`) => {
  const msg = `must be a number in ${minText}..${max}`;
  return z.number(msg).min(min, msg).max(max, msg);
};
const POSITIVE = Number.MIN_VALUE;

const schema = z.object({
  format: z.literal(MODEL_FORMAT),
  formatVersion: z.literal(MODEL_FORMAT_VERSION),
  name: z.string().min(1).max(200, 'must be at most 200 characters'),
  vocab_size: int(2, 1_000_000),
  text_len: int(1, 4096),
  image_size: int(1, 1024),
  patch_size: int(1, 64),
  channels: z.literal(3),
  dim: int(1, 8192),
  depth: int(1, 256),
  heads: int(1, 256),
  mlp_ratio: num(0.25, 16),
  rope_theta: num(POSITIVE, 1e9, '>0'),
  t_freq_dim: int(2, 8192).refine((v) => v % 2 === 0, 'must be even'),
  chunk_frames: int(1, 1024),
  top_k: int(0, 1024),
  causal: z.boolean(),
  causal_text: z.boolean().default(false),
  prediction: z.enum(['v', 'x']).default('v'),
  t_min: num(POSITIVE, 1, '>0').default(0.05),
  route_view: z.enum(['rotary', 'spatial', 'unrotated']).default('rotary'),
  fps: num(POSITIVE, 240, '>0'),
  train_shots: int(1, 4096).optional(),
  train_frames: int(1, 4096).optional(),
  train_frames_min: int(1, 4096).optional(),
  train_frames_max: int(1, 4096).optional(),
});

/**
 * Validates config.json (already parsed) and derives the sizes.
 * @param source names the file in error messages.
 * @throws InputError with one line naming the first bad field.
 */
export function parseModelConfig(value: unknown, source = 'config.json'): ModelConfig {
  if (
    typeof value === 'object' &&
    value !== null &&
    'formatVersion' in value &&
    (value as { formatVersion: unknown }).formatVersion !== MODEL_FORMAT_VERSION
  ) {
    throw new InputError(
      `${source}: formatVersion ${JSON.stringify((value as { formatVersion: unknown }).formatVersion)} is not supported (this studio reads ${MODEL_FORMAT} v${MODEL_FORMAT_VERSION})`,
    );
  }
  const r = schema.safeParse(value);
  if (!r.success) {
    const issue = r.error.issues[0];
    throw new InputError(`${source}: ${issue.path.join('.') || 'config'}: ${issue.message}`);
  }
  const c = r.data;
  const bad = (msg: string): never => {
    throw new InputError(`${source}: ${msg}`);
  };
  if (c.image_size % c.patch_size !== 0)
    bad(`image_size ${c.image_size} is not a multiple of patch_size ${c.patch_size}`);
  if (c.dim % c.heads !== 0) bad(`dim ${c.dim} is not a multiple of heads ${c.heads}`);
  const headDim = c.dim / c.heads;
  if (headDim % 2 !== 0 || headDim / 2 < 3) bad(`head dim ${headDim} must be even and ≥ 6`);
  const mlpHidden = Math.trunc(c.dim * c.mlp_ratio); // Python's int()
  return {
    name: c.name,
    vocabSize: c.vocab_size,
    textLen: c.text_len,
    imageSize: c.image_size,
    patchSize: c.patch_size,
    channels: c.channels,
    dim: c.dim,
    depth: c.depth,
    heads: c.heads,
    mlpRatio: c.mlp_ratio,
    ropeTheta: c.rope_theta,
    tFreqDim: c.t_freq_dim,
    chunkFrames: c.chunk_frames,
    topK: c.top_k,
    causal: c.causal,
    causalText: c.causal_text,
    prediction: c.prediction,
    tMin: c.t_min,
    routeView: c.route_view,
    fps: c.fps,
    trainShots: c.train_shots ?? null,
    trainFrames: trainFrames(c.train_frames, c.train_frames_min, c.train_frames_max, bad),
    grid: c.image_size / c.patch_size,
    headDim,
    patchDim: c.channels * c.patch_size ** 2,
    mlpHidden,
  };
}

function trainFrames(
  frames: number | undefined,
  min: number | undefined,
  max: number | undefined,
  bad: (msg: string) => never,
): TrainFrames | null {
  if ((min === undefined) !== (max === undefined)) bad('train_frames_min and train_frames_max come together');
  if (min !== undefined && max !== undefined) {
    if (min > max) bad(`train_frames_min ${min} is above train_frames_max ${max}`);
    return { min, max };
  }
  return frames === undefined ? null : { min: frames, max: frames };
}

/**
 * What a shot's length means for a model trained on `trained` frames per shot, or null when it
 * is within them (or the model does not say). Measured with moc-base while it knew only 8-frame
 * shots (docs/MODEL_CARD.md, Limits): shorter shots came out blurred or without their characters,
 * longer ones broke up after the trained length.
 */
export function shotLengthNote(frames: number, trained: TrainFrames | null): string | null {
  if (trained === null || (frames >= trained.min && frames <= trained.max)) return null;
  const what =
    trained.min === trained.max ? `${trained.max}-frame shots` : `shots of ${trained.min}–${trained.max} frames`;
  return frames > trained.max
    ? `The model was trained on ${what}: frames after frame ${trained.max} may break up.`
    : `The model was trained on ${what}: shorter ones may come out blurred or empty.`;
}

/** Every weight of the checkpoint, name → shape (train/model.py's state_dict). */
export function expectedWeights(cfg: ModelConfig): Map<string, number[]> {
  const { dim: d, headDim: D, patchDim: P, mlpHidden: h } = cfg;
  const w = new Map<string, number[]>([
    ['text_embed.weight', [cfg.vocabSize, d]],
    ['text_pos.weight', [cfg.textLen, d]],
    ['video_embed.weight', [d, P]],
    ['video_embed.bias', [d]],
    ['t_embed.fc1.weight', [d, cfg.tFreqDim]],
    ['t_embed.fc1.bias', [d]],
    ['t_embed.fc2.weight', [d, d]],
    ['t_embed.fc2.bias', [d]],
  ]);
  const linear = (name: string, out: number, inp: number): void => {
    w.set(`${name}.weight`, [out, inp]);
    w.set(`${name}.bias`, [out]);
  };
  for (let i = 0; i < cfg.depth; i++) {
    const b = `blocks.${i}.`;
    const last = i === cfg.depth - 1; // pre-only text: no text output, no text MLP
    linear(`${b}mod_text`, (last ? 2 : 6) * d, d);
    linear(`${b}mod_video`, 6 * d, d);
    for (const s of ['text', 'video']) {
      linear(`${b}attn.qkv_${s}`, 3 * d, d);
      w.set(`${b}attn.q_norm_${s}.weight`, [D]);
      w.set(`${b}attn.k_norm_${s}.weight`, [D]);
      if (s === 'video' || !last) {
        linear(`${b}attn.out_${s}`, d, d);
        linear(`${b}mlp_${s}.fc1`, h, d);
        linear(`${b}mlp_${s}.fc2`, d, h);
      }
    }
  }
  linear('final.mod', 2 * d, d);
  linear('final.proj', P, d);
  return w;
}

/** Parameter count of a config. */
export function countParameters(cfg: ModelConfig): number {
  let n = 0;
  for (const shape of expectedWeights(cfg).values()) n += shape.reduce((a, b) => a * b, 1);
  return n;
}
