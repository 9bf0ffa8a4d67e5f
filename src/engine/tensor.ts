/**
 * Tensors over GPU storage buffers, and a pool that recycles buffers by byte size.
 *
 * A tensor is a shape, a dtype and a buffer; it owns no CPU copy. Element sizes: f32 and i32 are
 * 4 bytes, f16 is 2. Buffers are padded to 16 bytes so vec4 loads never read past the end.
 */
import { ShapeError } from './errors.ts';

export type DType = 'f32' | 'f16' | 'i32' | 'u32';

export function bytesPerElement(dtype: DType): number {
  switch (dtype) {
    case 'f32':
    case 'i32':
    case 'u32':
      return 4;
    case 'f16':
      return 2;
    default:
      return dtype satisfies never;
  }
}

export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0)
      throw new ShapeError(`bad tensor shape [${shape.join(', ')}]: dims must be non-negative integers`);
    n *= d;
  }
  return n;
}

const USAGE = GPUBufferUsageFlags();
function GPUBufferUsageFlags(): number {
  // Globals exist in browsers and after `Object.assign(globalThis, globals)` in Node; fall back
  // to the spec's numeric values so importing this module never depends on that order.
  const U = (globalThis as { GPUBufferUsage?: typeof GPUBufferUsage }).GPUBufferUsage;
  return (U?.STORAGE ?? 0x80) | (U?.COPY_SRC ?? 0x4) | (U?.COPY_DST ?? 0x8);
}

/** Recycles storage buffers by padded byte size; `release` returns one, `trim` frees idle ones. */
export class BufferPool {
  private readonly free = new Map<number, GPUBuffer[]>();
  private live = 0;
  private idle = 0;
  private peak = 0;

  constructor(private readonly device: GPUDevice) {}

  acquire(bytes: number, label: string): GPUBuffer {
    const size = Math.max(16, Math.ceil(bytes / 16) * 16);
    const list = this.free.get(size);
    const reused = list?.pop();
    if (reused) {
      this.idle -= size;
      this.live += size;
      reused.label = label;
      return reused;
    }
    const buf = this.device.createBuffer({ size, usage: USAGE, label });
    this.live += size;
    this.peak = Math.max(this.peak, this.live + this.idle);
    return buf;
  }

  release(buf: GPUBuffer): void {
    const list = this.free.get(buf.size) ?? [];
    list.push(buf);
    this.free.set(buf.size, list);
    this.live -= buf.size;
    this.idle += buf.size;
  }

  /** Destroys every idle buffer. */
  trim(): void {
    for (const list of this.free.values()) for (const b of list) b.destroy();
    this.free.clear();
    this.idle = 0;
  }

  /** Bytes in use, bytes held idle, and the most ever allocated at once (live + idle). */
  stats(): { liveBytes: number; idleBytes: number; peakBytes: number } {
    return { liveBytes: this.live, idleBytes: this.idle, peakBytes: this.peak };
  }
}

/** A typed view of a GPU buffer. Dispose it (or let its owner) to hand the buffer back. */
export class Tensor {
  readonly size: number;
  private disposed = false;

  constructor(
    readonly buffer: GPUBuffer,
    readonly shape: readonly number[],
    readonly dtype: DType,
    /** Hands the buffer back (to a pool, or destroys it); null for views, which own nothing. */
    private readonly release: (() => void) | null,
  ) {
    this.size = numel(shape);
  }

  get byteLength(): number {
    return this.size * bytesPerElement(this.dtype);
  }

  get label(): string {
    return this.buffer.label;
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.release?.();
  }

  /** Same buffer, another shape with the same element count; the view owns nothing. */
  view(shape: readonly number[]): Tensor {
    if (numel(shape) !== this.size)
      throw new ShapeError(`cannot view [${this.shape.join(', ')}] as [${shape.join(', ')}]`);
    return new Tensor(this.buffer, shape, this.dtype, null);
  }
}
