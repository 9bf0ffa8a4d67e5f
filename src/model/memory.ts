/**
 * GPU memory budget of a generation, estimated before it starts (pure: no GPU), and the refusal
 * of a storyboard that will not fit, with a message that says what to change.
 *
 * What is counted (bytes, f32 = 4): the weights as uploaded; the per-sequence constants (RoPE
 * cos/sin [N, D], the zero block [H·N·D], no-routes [H, N, W]); one model call's activations (the
 * residual stream, modulated/normed copies, the qkv matmul output [N, 3d] and
 * its q/k/v per head, attention output, the MLP hidden [N, h]); the
 * attention buffers (routed slots [H, N, K] and, for MoC, the grouped design's scratch — its
 * partial outputs [H·N·W·D] and log-sum-exps — where it fits one binding, else the union design
 * needs none); the sampler's latents; and the routing traces of a traced step (per layer the
 * route words, up to H·C·(C + 2), and the chunk means of q and k [H, C, D]). WebGPU does not tell how much memory a GPU has, so the hard
 * checks are the adapter's per-buffer limits (maxBufferSize, maxStorageBufferBindingSize) for
 * the largest single buffer; the total is checked only against an optional budget.
 *
 * Legend: S shots, T frames, N tokens, C chunks, H heads, D head dim, d width, h MLP hidden,
 * W routed slots (top-k), L caption tokens, G grid (patches per side).
 */
import type { AttentionOptions } from './api.ts';
import type { ModelConfig } from './config.ts';
import { formatBytes } from './limits.ts';

export interface GpuMemoryLimits {
  maxBufferSize: number;
  maxStorageBufferBindingSize: number;
  /** Total bytes this generation may use (e.g. what the person or the host allows); none: unchecked. */
  budgetBytes?: number;
}

export interface MemoryPlan {
  frames: readonly number[];
  attention: AttentionOptions;
  /** Bytes of the uploaded weights. */
  weightBytes: number;
  /** Whether routing traces are read back (any traced step). */
  traced: boolean;
}

export interface MemoryBuffer {
  label: string;
  /** Bytes of one such buffer. */
  bytes: number;
  /** How many there are. */
  count: number;
  /** What grows it: 'tokens' (frames, shots), 'chunks' (C², chunk size), 'slots' (top-k). */
  grows: 'tokens' | 'chunks' | 'slots';
}

export interface MemoryEstimate {
  tokens: number;
  chunks: number;
  buffers: MemoryBuffer[];
  /** The largest single buffer (checked against the adapter's per-buffer limits). */
  largest: MemoryBuffer;
  /** The MoC design the attention kernel will choose ('grouped' where its scratch fits). */
  design: 'union' | 'grouped' | 'none';
  total: number;
}

type Dims = Pick<ModelConfig, 'dim' | 'heads' | 'headDim' | 'depth' | 'mlpHidden' | 'textLen' | 'grid' | 'imageSize'>;

/** The estimate for a plan on a model (see the module comment for what is counted). */
export function estimateMemory(cfg: Dims, plan: MemoryPlan, limits: GpuMemoryLimits): MemoryEstimate {
  const S = plan.frames.length;
  const T = plan.frames.reduce((a, b) => a + b, 0);
  const { heads: H, headDim: D, dim: d, mlpHidden: h } = cfg;
  const N = (S + 1) * cfg.textLen + T * cfg.grid * cfg.grid;
  const cf = Math.max(1, plan.attention.chunkFrames);
  const C = S + 1 + plan.frames.reduce((a, f) => a + Math.ceil(f / cf), 0);
  const W = plan.attention.mode === 'moc' ? plan.attention.topK : 0;
  const f32 = 4;
  const perBinding = Math.min(limits.maxBufferSize, limits.maxStorageBufferBindingSize);
  const groupedBytes = f32 * H * N * W * D;
  const design = W === 0 ? 'none' : groupedBytes <= perBinding ? 'grouped' : 'union';
  const buffers: MemoryBuffer[] = [
    { label: 'RoPE cos or sin [N, D]', bytes: f32 * N * D, count: 2, grows: 'tokens' },
    { label: 'zero block [H·N·D]', bytes: f32 * H * N * D, count: 1, grows: 'tokens' },
    { label: 'residual stream or a normed, modulated copy [N, d]', bytes: f32 * N * d, count: 4, grows: 'tokens' },
    { label: 'qkv [N, 3d]', bytes: 3 * f32 * N * d, count: 1, grows: 'tokens' },
    { label: 'q, k or v [H, N, D]', bytes: f32 * H * N * D, count: 3, grows: 'tokens' },
    { label: 'attention output [H, N, D]', bytes: f32 * H * N * D, count: 1, grows: 'tokens' },
    { label: 'MLP hidden [N, h]', bytes: f32 * N * h, count: 1, grows: 'tokens' },
    {
      label: 'sampler latents [T, 3, size, size]',
      bytes: f32 * T * 3 * cfg.imageSize * cfg.imageSize,
      count: 3,
      grows: 'tokens',
    },
  ];
  if (W > 0) {
    buffers.push({
      label: 'routed slots [H, N, top-k] (routing, its regrouped copy)',
      bytes: f32 * H * N * W,
      count: 3,
      grows: 'slots',
    });
    if (design === 'grouped') {
      buffers.push({
        label: 'MoC grouped partial outputs [H·N·top-k·D]',
        bytes: groupedBytes,
        count: 1,
        grows: 'slots',
      });
      buffers.push({
        label: 'MoC grouped log-sum-exps [H·N·(top-k+1)]',
        bytes: f32 * H * N * (W + 1),
        count: 1,
        grows: 'slots',
      });
    }
  }
  // a traced call keeps every layer's summaries until the pass ends: the chunk means of q and k
  // and, for MoC, the route words (sized for every pair routed, engine/kernels/trace.ts; read
  // back only as far as written)
  if (plan.traced) {
    if (plan.attention.mode === 'moc')
      buffers.push({
        label: 'routing trace counts [1 + H·C·(C + 2)]',
        bytes: f32 * (1 + H * C * (C + 2)),
        count: cfg.depth,
        grows: 'chunks',
      });
    buffers.push({
      label: 'routing trace chunk means [H, C, D]',
      bytes: f32 * H * C * D,
      count: 2 * cfg.depth,
      grows: 'chunks',
    });
  }
  const largest = buffers.reduce((a, b) => (b.bytes > a.bytes ? b : a));
  const total = plan.weightBytes + buffers.reduce((a, b) => a + b.bytes * b.count, 0);
  return { tokens: N, chunks: C, buffers, largest, design, total };
}

/** How to make a plan smaller, for the buffer that does not fit. */
function advice(
  cfg: Dims,
  plan: MemoryPlan,
  limits: GpuMemoryLimits,
  fits: (e: MemoryEstimate) => boolean,
  culprit: MemoryBuffer,
): string {
  const tips: string[] = [];
  const T = plan.frames.reduce((a, b) => a + b, 0);
  // the most frames (spread as this storyboard spreads them) that fit
  let lo = 0;
  let hi = T;
  const scaled = (k: number): number[] => plan.frames.map((f) => Math.max(1, Math.floor((f * k) / T)));
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (fits(estimateMemory(cfg, { ...plan, frames: scaled(mid) }, limits))) lo = mid;
    else hi = mid - 1;
  }
  const fitFrames = scaled(lo).reduce((a, b) => a + b, 0);
  if (lo > 0 && fitFrames < T) tips.push(`fewer frames (about ${fitFrames} of ${T} fit)`);
  else if (culprit.grows === 'tokens') tips.push('fewer frames');
  if (plan.attention.mode === 'dense' || culprit.grows === 'chunks')
    tips.push(
      `larger chunks (chunk frames ${plan.attention.chunkFrames} → ${plan.attention.chunkFrames * 2}) or fewer traced steps`,
    );
  if (plan.attention.mode === 'dense') tips.push('MoC attention instead of dense (it visits a fraction of the pairs)');
  if (culprit.grows === 'slots') tips.push(`a smaller top-k than ${plan.attention.topK}`);
  return tips.join(', or ');
}

/**
 * The estimate, or a one-line reason it will not fit with what to change.
 * @returns null when it fits, else the message.
 */
export function memoryProblem(cfg: Dims, plan: MemoryPlan, limits: GpuMemoryLimits): string | null {
  const perBinding = Math.min(limits.maxBufferSize, limits.maxStorageBufferBindingSize);
  const fits = (e: MemoryEstimate): boolean =>
    e.largest.bytes <= perBinding && (limits.budgetBytes === undefined || e.total <= limits.budgetBytes);
  const est = estimateMemory(cfg, plan, limits);
  if (fits(est)) return null;
  const T = plan.frames.reduce((a, b) => a + b, 0);
  const what = `${T} frames in ${plan.frames.length} shots (${est.tokens} tokens, ${est.chunks} chunks, ${plan.attention.mode} attention)`;
  if (est.largest.bytes > perBinding) {
    const limit =
      limits.maxStorageBufferBindingSize <= limits.maxBufferSize ? 'maxStorageBufferBindingSize' : 'maxBufferSize';
    return `${what} need a ${formatBytes(est.largest.bytes)} buffer (${est.largest.label}), more than this GPU's ${limit} of ${formatBytes(perBinding)}; try ${advice(cfg, plan, limits, fits, est.largest)}`;
  }
  const big = est.buffers.reduce((a, b) => (b.bytes * b.count > a.bytes * a.count ? b : a));
  return `${what} need about ${formatBytes(est.total)} of GPU memory, more than the ${formatBytes(limits.budgetBytes!)} allowed; try ${advice(cfg, plan, limits, fits, big)}`;
}
