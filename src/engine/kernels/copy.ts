/**
 * Tensor copy, 16 bytes per invocation: bit-exact for every dtype. Also the memory-bandwidth
 * probe of `bench kernels`. WGSL: shaders/copy.wgsl.
 */
import source from '../../../shaders/copy.wgsl?raw';
import { grid2d, packParams, type Engine } from '../engine.ts';
import { ShapeError } from '../errors.ts';
import { wgsl } from '../shaders.ts';
import type { Tensor } from '../tensor.ts';

const WG = 256;

/**
 * out = src (same dtype and element count; a new tensor of src's shape when `out` is omitted).
 * @throws ShapeError when `out` does not match src's dtype and size.
 */
export async function copy(eng: Engine, src: Tensor, out?: Tensor): Promise<Tensor> {
  const o = out ?? eng.tensor(src.shape, src.dtype, 'copy.out');
  if (o.dtype !== src.dtype || o.size !== src.size) {
    throw new ShapeError(
      `copy: out [${o.shape.join(', ')}] ${o.dtype} does not match src [${src.shape.join(', ')}] ${src.dtype}`,
    );
  }
  const words = Math.ceil(src.byteLength / 16);
  const pipeline = await eng.pipeline('copy', wgsl(source, 'f32'), { WG });
  eng.dispatch({
    pipeline,
    label: 'copy',
    params: packParams([['u32', words]]),
    bindings: [src, o],
    groups: grid2d(Math.ceil(words / WG), eng.adapter.limits.maxComputeWorkgroupsPerDimension),
  });
  return o;
}

/** Bytes one copy moves through memory (each byte read once and written once). */
export function copyBytes(src: Tensor): number {
  return 2 * Math.ceil(src.byteLength / 16) * 16;
}

/** CPU twin. */
export function copyCpu<T extends Float32Array | Int32Array | Uint32Array | Uint16Array>(src: T): T {
  return src.slice() as T;
}
