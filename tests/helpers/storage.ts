/**
 * Float tensors in either storage type, for kernel tests that run an f32 and an f16 path:
 * upload f32 data as the given type, read it back as f32, round a reference's inputs the way the
 * upload does, and poison every element (engine.poison fills 32-bit words, which leaves every
 * other f16 element a valid 0).
 */
import type { Engine } from '../../src/engine/engine.ts';
import type { StorageType } from '../../src/engine/shaders.ts';
import type { Tensor } from '../../src/engine/tensor.ts';
import { fromHalf, toHalf } from './compare.ts';

export function uploadAs(
  eng: Engine,
  st: StorageType,
  data: Float32Array,
  shape: readonly number[],
  label = 'tensor',
): Tensor {
  return st === 'f16' ? eng.upload(toHalf(data), shape, label, 'f16') : eng.upload(data, shape, label, 'f32');
}

/** The values the kernel sees after uploading `data` as `st`. */
export function roundAs(st: StorageType, data: Float32Array): Float32Array {
  return st === 'f16' ? fromHalf(toHalf(data)) : data;
}

export async function readAsF32(eng: Engine, t: Tensor): Promise<Float32Array> {
  const raw = await eng.read(t);
  return t.dtype === 'f16' ? fromHalf(raw as Uint16Array) : (raw as Float32Array);
}

/** Allocates a float tensor of `st` and fills every element with NaN. */
export function poisonedAs(eng: Engine, st: StorageType, shape: readonly number[], label = 'out'): Tensor {
  const t = eng.tensor(shape, st, label);
  if (st === 'f16') eng.write(t, new Uint16Array(t.buffer.size / 2).fill(0x7e00));
  else eng.poison(t);
  return t;
}
