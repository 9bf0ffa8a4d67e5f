/**
 * GPU-timestamp profiler. With `timestamp-query` each labelled compute pass gets a begin/end
 * timestamp pair; `resolve()` returns milliseconds per label (summed over repeats). Without the
 * feature every method is a no-op and `resolve()` returns an empty map.
 */
const MAX_PAIRS = 2048;

export class GpuProfiler {
  private querySet: GPUQuerySet | null = null;
  private resolveBuf: GPUBuffer | null = null;
  private readBuf: GPUBuffer | null = null;
  private labels: string[] = [];
  enabled = false;

  constructor(
    private readonly device: GPUDevice,
    readonly supported: boolean,
  ) {}

  /** Starts recording; does nothing when the adapter lacks `timestamp-query`. */
  start(): void {
    if (!this.supported) return;
    if (!this.querySet) {
      this.querySet = this.device.createQuerySet({
        type: 'timestamp',
        count: MAX_PAIRS * 2,
        label: 'profiler.queries',
      });
      const bytes = MAX_PAIRS * 2 * 8;
      this.resolveBuf = this.device.createBuffer({
        size: bytes,
        usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC,
        label: 'profiler.resolve',
      });
      this.readBuf = this.device.createBuffer({
        size: bytes,
        usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
        label: 'profiler.read',
      });
    }
    this.labels = [];
    this.enabled = true;
  }

  /** Timestamp writes for the next compute pass, or undefined when not recording or full. */
  passWrites(label: string): GPUComputePassTimestampWrites | undefined {
    if (!this.enabled || !this.querySet || this.labels.length >= MAX_PAIRS) return undefined;
    const i = this.labels.length;
    this.labels.push(label);
    return { querySet: this.querySet, beginningOfPassWriteIndex: 2 * i, endOfPassWriteIndex: 2 * i + 1 };
  }

  /** Stops recording and returns total milliseconds per label. */
  async resolve(): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    if (!this.enabled || !this.querySet || !this.resolveBuf || !this.readBuf || this.labels.length === 0) {
      this.enabled = false;
      return out;
    }
    this.enabled = false;
    const n = this.labels.length;
    const enc = this.device.createCommandEncoder({ label: 'profiler.resolve' });
    enc.resolveQuerySet(this.querySet, 0, n * 2, this.resolveBuf, 0);
    enc.copyBufferToBuffer(this.resolveBuf, 0, this.readBuf, 0, n * 16);
    this.device.queue.submit([enc.finish()]);
    await this.readBuf.mapAsync(GPUMapMode.READ, 0, n * 16);
    const t = new BigUint64Array(this.readBuf.getMappedRange(0, n * 16).slice(0));
    this.readBuf.unmap();
    for (let i = 0; i < n; i++) {
      const ms = Number(t[2 * i + 1] - t[2 * i]) / 1e6;
      const label = this.labels[i];
      out.set(label, (out.get(label) ?? 0) + (ms > 0 ? ms : 0));
    }
    return out;
  }

  destroy(): void {
    this.querySet?.destroy();
    this.resolveBuf?.destroy();
    this.readBuf?.destroy();
  }
}
