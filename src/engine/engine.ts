/**
 * The engine: one GPUDevice with its features, limits, buffer pool, pipeline cache, profiler and
 * a command encoder that batches kernel dispatches until `flush()`/`sync()`.
 *
 * Host cost per dispatch is kept small, since a sampler step records several hundred: dispatches
 * share one compute pass until the next flush (each dispatch is its own usage scope, so WebGPU
 * orders their storage accesses), uniform buffers are cached by content (their bytes never change
 * once written), and bind groups by (pipeline, buffers) — a sampler step binds the same pooled
 * buffers in the same order as the step before. Only while the profiler records does each
 * dispatch get a pass of its own (timestamps are written per pass).
 *
 * Works in a browser window, a module worker and Node (see host-node.ts); it only needs a `GPU`.
 * Errors: NoAdapterError (no adapter), UnsupportedError (feature/limit missing), GpuValidationError
 * (validation or out-of-memory reported by WebGPU, thrown from `sync()`), DeviceLostError.
 */
import { DeviceLostError, GpuValidationError, NoAdapterError, ShapeError, UnsupportedError } from './errors.ts';
import { PipelineCache, type Constants } from './pipelines.ts';
import { GpuProfiler } from './profiler.ts';
import { BufferPool, Tensor, bytesPerElement, numel, type DType } from './tensor.ts';

export interface EngineFeatures {
  f16: boolean;
  subgroups: boolean;
  timestamp: boolean;
  /** chromium-experimental-subgroup-matrix (cooperative matrices; tensor cores on NVIDIA). */
  subgroupMatrix: boolean;
}

/** One cooperative-matrix shape the adapter offers (GPUAdapterInfo.subgroupMatrixConfigs). */
export interface SubgroupMatrixConfig {
  componentType: string;
  resultComponentType: string;
  M: number;
  N: number;
  K: number;
}

/** Plain-data description of the adapter, safe to send across a worker boundary. */
export interface AdapterSummary {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  isFallback: boolean;
  features: string[];
  /** Empty unless the adapter has chromium-experimental-subgroup-matrix. */
  subgroupMatrixConfigs: SubgroupMatrixConfig[];
  limits: {
    maxStorageBufferBindingSize: number;
    maxBufferSize: number;
    maxComputeWorkgroupStorageSize: number;
    maxComputeInvocationsPerWorkgroup: number;
    maxComputeWorkgroupsPerDimension: number;
  };
}

export interface EngineOptions {
  powerPreference?: GPUPowerPreference;
  /** Features not to request even when the adapter has them (to test the f32 fallbacks). */
  disable?: Array<keyof EngineFeatures>;
}

/** The adapter's cooperative-matrix shapes as plain data ([] where the info has none). */
export function subgroupMatrixConfigs(info: GPUAdapterInfo | undefined): SubgroupMatrixConfig[] {
  const raw = (info as { subgroupMatrixConfigs?: Iterable<Partial<SubgroupMatrixConfig>> } | undefined)
    ?.subgroupMatrixConfigs;
  if (!raw) return [];
  return [...raw].map((c) => ({
    componentType: String(c.componentType),
    resultComponentType: String(c.resultComponentType),
    M: Number(c.M),
    N: Number(c.N),
    K: Number(c.K),
  }));
}

export type TypedArray = Float32Array | Int32Array | Uint32Array | Uint16Array;
type Binding = Tensor | GPUBuffer;

const REQUESTED_LIMITS = [
  'maxStorageBufferBindingSize',
  'maxBufferSize',
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupSizeY',
  'maxComputeWorkgroupsPerDimension',
  'maxStorageBuffersPerShaderStage',
] as const;

/** How long a failed readback waits for `device.lost` before it reports a read error. */
const LOST_GRACE_MS = 250;

/** Cache sizes: a moc-base step uses a few hundred distinct uniforms and bind groups. */
const MAX_CACHED_UNIFORMS = 4096;
const MAX_CACHED_BIND_GROUPS = 8192;

export class Engine {
  readonly pool: BufferPool;
  readonly pipelines: PipelineCache;
  readonly profiler: GpuProfiler;
  /** Resolves when the device is lost, with the reason. */
  readonly lost: Promise<DeviceLostError>;
  private encoder: GPUCommandEncoder | null = null;
  private pass: GPUComputePassEncoder | null = null;
  private transient: GPUBuffer[] = [];
  private readonly uniforms = new Map<string, GPUBuffer>();
  private readonly bindGroups = new Map<string, GPUBindGroup>();
  private readonly layouts = new WeakMap<GPUComputePipeline, GPUBindGroupLayout>();
  private readonly ids = new WeakMap<object, number>();
  private nextId = 1;
  /** Host-side counters (dispatches recorded, submits, bind groups and uniforms created). */
  readonly stats = { dispatches: 0, submits: 0, bindGroups: 0, uniforms: 0 };
  private errors: string[] = [];
  private isLost = false;

  private constructor(
    readonly device: GPUDevice,
    readonly features: EngineFeatures,
    readonly adapter: AdapterSummary,
  ) {
    this.pool = new BufferPool(device);
    this.pipelines = new PipelineCache(device);
    this.profiler = new GpuProfiler(device, features.timestamp);
    this.lost = device.lost.then((info) => {
      this.isLost = true;
      return new DeviceLostError(info.reason ?? 'unknown', info.message ?? '');
    });
    device.addEventListener('uncapturederror', (ev) => {
      const e = (ev as GPUUncapturedErrorEvent).error;
      this.errors.push(e.message.split('\n')[0]);
    });
  }

  /**
   * Acquires an adapter and a device from `gpu` (navigator.gpu, or nodeGpu() in Node), requesting
   * the optional features it has and the adapter's own limits.
   * @throws NoAdapterError when `gpu` is missing or returns no adapter.
   */
  static async create(gpu: GPU | undefined, options: EngineOptions = {}): Promise<Engine> {
    if (!gpu) throw new NoAdapterError('WebGPU is not available here (navigator.gpu is missing)');
    const adapter = await gpu.requestAdapter({ powerPreference: options.powerPreference ?? 'high-performance' });
    if (!adapter) throw new NoAdapterError('WebGPU found no adapter (requestAdapter returned null)');
    const off = new Set(options.disable ?? []);
    const want: Array<[keyof EngineFeatures, GPUFeatureName]> = [
      ['f16', 'shader-f16'],
      ['subgroups', 'subgroups' as GPUFeatureName],
      ['timestamp', 'timestamp-query'],
      ['subgroupMatrix', 'chromium-experimental-subgroup-matrix' as GPUFeatureName],
    ];
    const requiredFeatures: GPUFeatureName[] = [];
    const features: EngineFeatures = { f16: false, subgroups: false, timestamp: false, subgroupMatrix: false };
    for (const [key, name] of want) {
      if (adapter.features.has(name) && !off.has(key)) {
        requiredFeatures.push(name);
        features[key] = true;
      }
    }
    const requiredLimits: Record<string, number> = {};
    for (const k of REQUESTED_LIMITS) requiredLimits[k] = adapter.limits[k];
    const device = await adapter.requestDevice({ requiredFeatures, requiredLimits, label: 'moc-studio' });
    const info = adapter.info;
    const summary: AdapterSummary = {
      vendor: info?.vendor ?? '',
      architecture: info?.architecture ?? '',
      device: info?.device ?? '',
      description: info?.description ?? '',
      isFallback: Boolean((info as { isFallbackAdapter?: boolean } | undefined)?.isFallbackAdapter),
      features: [...adapter.features].map(String).sort(),
      subgroupMatrixConfigs: subgroupMatrixConfigs(info),
      limits: {
        maxStorageBufferBindingSize: device.limits.maxStorageBufferBindingSize,
        maxBufferSize: device.limits.maxBufferSize,
        maxComputeWorkgroupStorageSize: device.limits.maxComputeWorkgroupStorageSize,
        maxComputeInvocationsPerWorkgroup: device.limits.maxComputeInvocationsPerWorkgroup,
        maxComputeWorkgroupsPerDimension: device.limits.maxComputeWorkgroupsPerDimension,
      },
    };
    return new Engine(device, features, summary);
  }

  /**
   * What the adapter exposes, in lines for `moc --version` and bench headers: every feature it
   * reports, the ones the engine uses, and its cooperative-matrix shapes.
   */
  capabilities(): string[] {
    const a = this.adapter;
    const used = (Object.keys(this.features) as Array<keyof EngineFeatures>).filter((k) => this.features[k]);
    const shapes = a.subgroupMatrixConfigs.map(
      (c) => `${c.componentType}->${c.resultComponentType} ${c.M}x${c.N}x${c.K}`,
    );
    return [
      `adapter: ${this.describe()}`,
      `adapter features: ${a.features.join(' ') || 'none'}`,
      `engine uses: ${used.join(', ') || 'no optional features'}`,
      `subgroupMatrixConfigs: ${shapes.join(', ') || 'none'}`,
    ];
  }

  /** One line naming the adapter, e.g. for a status bar. */
  describe(): string {
    const a = this.adapter;
    const name = [a.vendor, a.architecture, a.device, a.description].filter(Boolean).join(' ') || 'unknown adapter';
    const feats = (Object.keys(this.features) as Array<keyof EngineFeatures>).filter((k) => this.features[k]);
    return `${name}${a.isFallback ? ' (fallback)' : ''}; features: ${feats.join(', ') || 'none'}`;
  }

  /** Allocates an uninitialised tensor from the pool. */
  tensor(shape: readonly number[], dtype: DType = 'f32', label = 'tensor'): Tensor {
    this.checkAlive();
    const bytes = numel(shape) * bytesPerElement(dtype);
    this.checkBinding(bytes, label);
    const buf = this.pool.acquire(bytes, label);
    return new Tensor(buf, shape, dtype, () => this.pool.release(buf));
  }

  /** Allocates a tensor and writes `data` into it. */
  upload(data: TypedArray, shape: readonly number[], label = 'tensor', dtype?: DType): Tensor {
    const dt: DType =
      dtype ??
      (data instanceof Int32Array
        ? 'i32'
        : data instanceof Uint32Array
          ? 'u32'
          : data instanceof Uint16Array
            ? 'f16'
            : 'f32');
    if (data.length !== numel(shape))
      throw new ShapeError(`${label}: ${data.length} values do not fill shape [${shape.join(', ')}]`);
    const t = this.tensor(shape, dt, label);
    this.write(t, data);
    return t;
  }

  /**
   * Writes `data` into `t`. Work recorded so far is submitted first: queue writes run before
   * unsubmitted commands, and a pooled buffer may still be read by those.
   */
  write(t: Tensor, data: TypedArray): void {
    this.flush();
    // writeBuffer needs a multiple of 4 bytes; f16 data of odd length is padded.
    const bytes = data.byteLength;
    if (bytes % 4 === 0) this.device.queue.writeBuffer(t.buffer, 0, data.buffer, data.byteOffset, bytes);
    else {
      const padded = new Uint8Array(bytes + 2);
      padded.set(new Uint8Array(data.buffer, data.byteOffset, bytes));
      this.device.queue.writeBuffer(t.buffer, 0, padded);
    }
  }

  /** Fills a f32 tensor with `value` (NaN by default) so that unwritten outputs are visible. */
  poison(t: Tensor, value = Number.NaN): void {
    this.flush();
    const words = t.buffer.size / 4;
    const fill =
      t.dtype === 'i32' || t.dtype === 'u32'
        ? new Int32Array(words).fill(value | 0 || -777)
        : new Float32Array(words).fill(value);
    this.device.queue.writeBuffer(t.buffer, 0, fill);
  }

  /** Copies a tensor back to the CPU (flushes pending work first). */
  async read(t: Tensor): Promise<TypedArray> {
    this.flush();
    const size = Math.ceil(t.byteLength / 4) * 4 || 4;
    const staging = this.device.createBuffer({
      size,
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
      label: `${t.label}.readback`,
    });
    const enc = this.device.createCommandEncoder({ label: `${t.label}.readback` });
    enc.copyBufferToBuffer(t.buffer, 0, staging, 0, size);
    this.device.queue.submit([enc.finish()]);
    try {
      await staging.mapAsync(GPUMapMode.READ);
    } catch (e) {
      staging.destroy();
      // A lost device aborts pending mappings before `device.lost` settles: give it a moment,
      // so callers see the loss (and can recover) rather than a read error.
      const lost = this.isLost
        ? await this.lost
        : await Promise.race([this.lost, new Promise<null>((r) => setTimeout(() => r(null), LOST_GRACE_MS))]);
      throw lost ?? new GpuValidationError(`reading ${t.label} failed: ${(e as Error).message}`);
    }
    const copy = staging.getMappedRange().slice(0);
    staging.unmap();
    staging.destroy();
    this.throwCollected();
    switch (t.dtype) {
      case 'f32':
        return new Float32Array(copy, 0, t.size);
      case 'i32':
        return new Int32Array(copy, 0, t.size);
      case 'u32':
        return new Uint32Array(copy, 0, t.size);
      case 'f16':
        return new Uint16Array(copy, 0, t.size);
      default:
        return t.dtype satisfies never;
    }
  }

  /** Gets (or compiles and caches) a pipeline. */
  pipeline(name: string, code: string, constants: Constants = {}, variant = ''): Promise<GPUComputePipeline> {
    this.checkAlive();
    return this.pipelines.get(name, code, constants, variant);
  }

  /**
   * Records one dispatch. `params` (if any) is bound as a uniform at @binding(0); `bindings`
   * follow at @binding(1..n), all in @group(0).
   */
  dispatch(opts: {
    pipeline: GPUComputePipeline;
    label: string;
    bindings: Binding[];
    params?: ArrayBuffer;
    groups: readonly [number, number?, number?];
  }): void {
    this.checkAlive();
    const [x, y = 1, z = 1] = opts.groups;
    const maxG = this.adapter.limits.maxComputeWorkgroupsPerDimension;
    if (x > maxG || y > maxG || z > maxG) {
      throw new UnsupportedError(
        `${opts.label}: dispatch of ${x}×${y}×${z} workgroups exceeds this adapter's limit of ${maxG} per dimension`,
      );
    }
    if (x === 0 || y === 0 || z === 0) return;
    const bindGroup = this.bindGroup(opts.pipeline, opts.label, opts.bindings, opts.params);
    const writes = this.profiler.passWrites(opts.label);
    if (writes) this.endPass();
    const pass =
      this.pass ??
      this.recorder().beginComputePass({ label: writes ? opts.label : 'engine.pass', timestampWrites: writes });
    pass.setPipeline(opts.pipeline);
    pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(x, y, z);
    this.stats.dispatches++;
    if (writes) pass.end();
    else this.pass = pass;
  }

  /** The bind group of a dispatch: params as a uniform at @binding(0), then `bindings` (cached). */
  private bindGroup(
    pipeline: GPUComputePipeline,
    label: string,
    bindings: Binding[],
    params?: ArrayBuffer,
  ): GPUBindGroup {
    const buffers = bindings.map((b) => (b instanceof Tensor ? b.buffer : b));
    const uniform = params ? this.uniform(params, label) : null;
    let key = String(this.id(pipeline));
    if (uniform) key += `u${this.id(uniform)}`;
    for (const b of buffers) key += `,${this.id(b)}`;
    const hit = this.bindGroups.get(key);
    if (hit) return hit;
    const entries: GPUBindGroupEntry[] = [];
    if (uniform) entries.push({ binding: 0, resource: { buffer: uniform } });
    buffers.forEach((buffer, i) => entries.push({ binding: i + 1, resource: { buffer } }));
    let layout = this.layouts.get(pipeline);
    if (!layout) {
      layout = pipeline.getBindGroupLayout(0);
      this.layouts.set(pipeline, layout);
    }
    const group = this.device.createBindGroup({ layout, entries, label: `${label}.bindings` });
    if (this.bindGroups.size >= MAX_CACHED_BIND_GROUPS) this.bindGroups.clear();
    this.bindGroups.set(key, group);
    this.stats.bindGroups++;
    return group;
  }

  /** A uniform buffer holding `params` (16-byte padded), shared by every dispatch with the same bytes. */
  private uniform(params: ArrayBuffer, label: string): GPUBuffer {
    const words = new Uint32Array(params, 0, params.byteLength >> 2);
    const key = `${params.byteLength}:${words.join(',')}`;
    const hit = this.uniforms.get(key);
    if (hit) return hit;
    if (this.uniforms.size >= MAX_CACHED_UNIFORMS) {
      // Bind groups may hold the old buffers: forget both; the buffers go after the next submit.
      this.transient.push(...this.uniforms.values());
      this.uniforms.clear();
      this.bindGroups.clear();
    }
    const size = Math.max(16, Math.ceil(params.byteLength / 16) * 16);
    const u = this.device.createBuffer({
      size,
      usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
      label: `${label}.params`,
    });
    this.device.queue.writeBuffer(u, 0, params);
    this.uniforms.set(key, u);
    this.stats.uniforms++;
    return u;
  }

  private id(o: object): number {
    let id = this.ids.get(o);
    if (id === undefined) {
      id = this.nextId++;
      this.ids.set(o, id);
    }
    return id;
  }

  /** The command encoder that collects work until the next flush. */
  private recorder(): GPUCommandEncoder {
    this.encoder ??= this.device.createCommandEncoder({ label: 'engine.encoder' });
    return this.encoder;
  }

  private endPass(): void {
    this.pass?.end();
    this.pass = null;
  }

  /** Records a copy of all of `src` into `dst` from element `at` on (queue order, no submit). */
  copy(src: Tensor, dst: Tensor, at = 0): void {
    this.checkAlive();
    const offset = at * bytesPerElement(dst.dtype);
    if (offset + src.byteLength > dst.byteLength)
      throw new ShapeError(
        `copy: ${src.label} (${src.byteLength} bytes) does not fit ${dst.label} from byte ${offset}`,
      );
    this.endPass();
    this.recorder().copyBufferToBuffer(src.buffer, 0, dst.buffer, offset, src.byteLength);
  }

  /** Records zeroing all of `t` (queue order, no submit); a view zeroes its own bytes only. */
  clear(t: Tensor): void {
    this.checkAlive();
    this.endPass();
    this.recorder().clearBuffer(t.buffer, 0, Math.ceil(t.byteLength / 4) * 4);
  }

  /** Submits recorded work. */
  flush(): void {
    if (!this.encoder) return;
    this.endPass();
    this.device.queue.submit([this.encoder.finish()]);
    this.stats.submits++;
    this.encoder = null;
    for (const b of this.transient) b.destroy();
    this.transient = [];
  }

  /**
   * Submits recorded work and waits for the GPU to finish it.
   * @throws GpuValidationError for errors WebGPU reported meanwhile; DeviceLostError if lost.
   */
  async sync(): Promise<void> {
    this.flush();
    await this.device.queue.onSubmittedWorkDone();
    if (this.isLost) throw await this.lost;
    this.throwCollected();
  }

  /** Refuses bindings larger than the adapter allows, naming the tensor and both sizes. */
  checkBinding(bytes: number, label: string): void {
    const max = this.adapter.limits.maxStorageBufferBindingSize;
    if (bytes > max) {
      throw new UnsupportedError(
        `${label}: ${(bytes / 2 ** 20).toFixed(1)} MiB exceeds this adapter's storage binding limit of ${(max / 2 ** 20).toFixed(1)} MiB`,
      );
    }
  }

  destroy(): void {
    this.flush();
    for (const u of this.uniforms.values()) u.destroy();
    this.uniforms.clear();
    this.bindGroups.clear();
    this.pool.trim();
    this.profiler.destroy();
    this.device.destroy();
  }

  private checkAlive(): void {
    if (this.isLost) throw new DeviceLostError('destroyed', 'the engine can no longer be used; create a new one');
  }

  private throwCollected(): void {
    if (this.errors.length === 0) return;
    const first = this.errors[0];
    const more = this.errors.length - 1;
    this.errors = [];
    throw new GpuValidationError(`WebGPU reported: ${first}${more ? ` (and ${more} more)` : ''}`);
  }
}

/** Splits `n` workgroups into a 2D grid within the per-dimension limit (kernels linearise). */
export function grid2d(n: number, maxPerDim = 65535): [number, number] {
  if (n <= maxPerDim) return [n, 1];
  const y = Math.ceil(n / maxPerDim);
  return [Math.ceil(n / y), y];
}

/** Packs uniform params: each entry is ['u32' | 'i32' | 'f32', value], 4 bytes each, in order. */
export function packParams(fields: Array<['u32' | 'i32' | 'f32', number]>): ArrayBuffer {
  const buf = new ArrayBuffer(Math.max(16, Math.ceil((fields.length * 4) / 16) * 16));
  const dv = new DataView(buf);
  fields.forEach(([t, v], i) => {
    if (t === 'f32') dv.setFloat32(i * 4, v, true);
    else if (t === 'i32') dv.setInt32(i * 4, v, true);
    else dv.setUint32(i * 4, v, true);
  });
  return buf;
}
