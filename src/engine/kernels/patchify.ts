/**
 * Frames ↔ patch tokens: `patchify` cuts frames [F, C, H, W] (channels first) into P×P patches,
 * one token per patch, and `unpatchify` puts them back. Token order: frames in order, patches
 * row-major within a frame; feature order (c, py, px). WGSL: shaders/patchify.wgsl; CPU twins:
 * patchifyCpu, unpatchifyCpu.
 */
import source from '../../../shaders/patchify.wgsl?raw';
import { grid2d, packParams, type Engine } from '../engine.ts';
import { ShapeError } from '../errors.ts';
import { wgsl } from '../shaders.ts';
import type { Tensor } from '../tensor.ts';

const WG = 256;

/** [frames, channels, height, width] of channels-first frames. */
export type FrameShape = readonly [number, number, number, number];

/**
 * The token shape [F·(H/P)·(W/P), C·P·P] of frames `shape` cut into `patch`×`patch` patches.
 * @throws ShapeError unless every size is a positive integer and H and W are multiples of P.
 */
export function tokenShape(shape: FrameShape, patch: number): [number, number] {
  return geometry('patchify', shape, patch);
}

function geometry(op: string, shape: readonly number[], patch: number): [number, number] {
  if (shape.length !== 4 || shape.some((d) => !Number.isInteger(d) || d < 1)) {
    throw new ShapeError(
      `${op}: frames must be [frames, channels, height, width] of positive sizes, got [${shape.join(', ')}]`,
    );
  }
  if (!Number.isInteger(patch) || patch < 1)
    throw new ShapeError(`${op}: patch must be a positive integer, got ${patch}`);
  const [f, c, h, w] = shape;
  if (h % patch !== 0) throw new ShapeError(`${op}: frame height ${h} is not a multiple of the patch size ${patch}`);
  if (w % patch !== 0) throw new ShapeError(`${op}: frame width ${w} is not a multiple of the patch size ${patch}`);
  return [f * (h / patch) * (w / patch), c * patch * patch];
}

function checkOut(op: string, src: Tensor, out: Tensor | undefined): void {
  if (src.dtype !== 'f32' && src.dtype !== 'f16')
    throw new ShapeError(`${op}: input must be f32 or f16, got ${src.dtype}`);
  if (out && (out.size !== src.size || out.dtype !== src.dtype))
    throw new ShapeError(`${op}: out ${out.dtype} [${out.shape.join(', ')}] must hold ${src.size} ${src.dtype} values`);
  if (out?.buffer === src.buffer) throw new ShapeError(`${op}: out cannot be the input (it is a permutation)`);
}

/**
 * frames [F, C, H, W] → tokens [F·(H/P)·(W/P), C·P·P], into `out` (a new tensor unless given).
 * @throws ShapeError for frames that are not 4D, H or W not a multiple of `patch`, or a bad `out`.
 */
export function patchify(eng: Engine, frames: Tensor, patch: number, out?: Tensor): Promise<Tensor> {
  const shape = geometry('patchify', frames.shape, patch);
  checkOut('patchify', frames, out);
  return run(
    eng,
    0,
    frames,
    frames.shape as FrameShape,
    patch,
    out ?? eng.tensor(shape, frames.dtype, 'patchify.tokens'),
  );
}

/**
 * tokens [F·(H/P)·(W/P), C·P·P] → frames `frameShape` [F, C, H, W], into `out` (a new tensor
 * unless given).
 * @throws ShapeError for a bad frame shape, H or W not a multiple of `patch`, tokens that are not
 *   the matching [tokens, features], or a bad `out`.
 */
export function unpatchify(
  eng: Engine,
  tokens: Tensor,
  frameShape: FrameShape,
  patch: number,
  out?: Tensor,
): Promise<Tensor> {
  const [t, k] = geometry('unpatchify', frameShape, patch);
  if (tokens.shape.length !== 2 || tokens.shape[0] !== t || tokens.shape[1] !== k) {
    throw new ShapeError(
      `unpatchify: tokens [${tokens.shape.join(', ')}] must be [${t}, ${k}] for frames [${frameShape.join(', ')}] and patch ${patch}`,
    );
  }
  checkOut('unpatchify', tokens, out);
  return run(eng, 1, tokens, frameShape, patch, out ?? eng.tensor(frameShape, tokens.dtype, 'patchify.frames'));
}

async function run(
  eng: Engine,
  dir: 0 | 1,
  src: Tensor,
  [f, c, h, w]: FrameShape,
  patch: number,
  out: Tensor,
): Promise<Tensor> {
  const storage = src.dtype === 'f16' ? 'f16' : 'f32';
  const pipeline = await eng.pipeline('patchify', wgsl(source, storage), { DIR: dir, WG }, storage);
  eng.dispatch({
    pipeline,
    label: dir === 0 ? 'patchify.patchify' : 'patchify.unpatchify',
    params: packParams([
      ['u32', f],
      ['u32', c],
      ['u32', h],
      ['u32', w],
      ['u32', patch],
    ]),
    bindings: [src, out],
    groups: grid2d(Math.ceil(src.size / WG)),
  });
  return out;
}

/** Flat index in the tokens of frames element (f, c, y, x). */
function tokenIndex([, c, h, w]: FrameShape, patch: number, fi: number, ci: number, y: number, x: number): number {
  const t = (fi * (h / patch) + Math.floor(y / patch)) * (w / patch) + Math.floor(x / patch);
  return t * c * patch * patch + (ci * patch + (y % patch)) * patch + (x % patch);
}

function permute(op: string, data: Float32Array, shape: FrameShape, patch: number, toTokens: boolean): Float32Array {
  geometry(op, shape, patch);
  const [f, c, h, w] = shape;
  if (data.length !== f * c * h * w)
    throw new ShapeError(`${op}: ${data.length} values do not fill frames [${shape.join(', ')}]`);
  const out = new Float32Array(data.length);
  let i = 0; // walks the frames in order
  for (let fi = 0; fi < f; fi++)
    for (let ci = 0; ci < c; ci++)
      for (let y = 0; y < h; y++)
        for (let x = 0; x < w; x++, i++) {
          const j = tokenIndex(shape, patch, fi, ci, y, x);
          if (toTokens) out[j] = data[i];
          else out[i] = data[j];
        }
  return out;
}

/** CPU twin of `patchify`: frames [F, C, H, W] → tokens, as a flat array. */
export function patchifyCpu(frames: Float32Array, shape: FrameShape, patch: number): Float32Array {
  return permute('patchify', frames, shape, patch, true);
}

/** CPU twin of `unpatchify`: tokens → frames `shape`, as a flat array. */
export function unpatchifyCpu(tokens: Float32Array, shape: FrameShape, patch: number): Float32Array {
  return permute('unpatchify', tokens, shape, patch, false);
}
