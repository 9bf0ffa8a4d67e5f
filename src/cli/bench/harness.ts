/**
 * Benchmark harness: times kernel cases on one engine and formats the results.
 *
 * A case prepares its inputs once (`setup`), then `run()` records one invocation of the kernel.
 * Timing: warm-up runs first (pipelines compile, caches fill), then `samples` samples of `inner`
 * back-to-back runs each (inner chosen so a sample lasts about `minSampleMs`). Per sample we take
 * the GPU time of every compute pass from the profiler's timestamps (when the adapter has
 * `timestamp-query`) and the wall time from the first record to the end of `sync()`; both are
 * divided by `inner`, and the reported figure is the median over samples. GPU time is preferred;
 * wall time includes submission and the inter-pass gaps, so it is an upper bound.
 */
import type { Engine } from '../../engine/engine.ts';

/** One prepared case: inputs uploaded, ready to run repeatedly. */
export interface Prepared {
  /** Records one invocation (dispatches); the harness syncs. */
  run(): Promise<unknown>;
  /** Floating-point operations per run (compute-bound cases). */
  flops?: number;
  /** Bytes read + written per run (memory-bound cases, the minimum the kernel must move). */
  bytes?: number;
  /** Checks the output of the timed runs; a one-line description of what is wrong, or null. */
  verify?(): Promise<string | null>;
  dispose(): void;
}

export interface BenchCase {
  kernel: string;
  /** Human-readable shape, e.g. "4096×4096×4096". */
  shape: string;
  /** Which measured peak the case is compared with. */
  bound: 'compute' | 'memory';
  setup(eng: Engine): Promise<Prepared>;
}

export interface TimingOptions {
  warmup: number;
  samples: number;
  /** Target duration of one sample; sets how many runs it batches. */
  minSampleMs: number;
  /** Upper bound on runs per sample (the profiler holds 2048 passes). */
  maxInner: number;
}

export interface Timing {
  /** Median GPU milliseconds per run, or null without timestamp queries. */
  gpuMs: number | null;
  /** Median wall milliseconds per run (recording + submit + sync, amortised over `inner`). */
  wallMs: number;
  inner: number;
  samples: number;
}

export interface Peaks {
  /** Copy bandwidth, GB/s (read + write). */
  gbps: number;
  /** Matmul throughput, GFLOP/s. */
  gflops: number;
}

export interface BenchResult {
  kernel: string;
  shape: string;
  bound: 'compute' | 'memory';
  ms: number | null;
  timer: 'gpu' | 'wall' | null;
  gpuMs: number | null;
  wallMs: number | null;
  gflops: number | null;
  gbps: number | null;
  /** Of the measured peak that matches `bound`, percent. */
  pctPeak: number | null;
  inner: number;
  error?: string;
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Times `run` (see the module comment for the method). */
export async function timeRuns(eng: Engine, run: () => Promise<unknown>, opts: TimingOptions): Promise<Timing> {
  for (let i = 0; i < opts.warmup; i++) await run();
  await eng.sync();
  // one timed run, to size the samples
  let t0 = performance.now();
  await run();
  await eng.sync();
  const once = Math.max(performance.now() - t0, 1e-3);
  const inner = Math.max(1, Math.min(opts.maxInner, Math.ceil(opts.minSampleMs / once)));
  const gpu: number[] = [];
  const wall: number[] = [];
  for (let s = 0; s < opts.samples; s++) {
    eng.profiler.start();
    t0 = performance.now();
    for (let i = 0; i < inner; i++) await run();
    await eng.sync();
    wall.push((performance.now() - t0) / inner);
    const passes = await eng.profiler.resolve();
    if (passes.size > 0) gpu.push([...passes.values()].reduce((a, b) => a + b, 0) / inner);
  }
  return { gpuMs: gpu.length ? median(gpu) : null, wallMs: median(wall), inner, samples: opts.samples };
}

/**
 * Sets up, times, verifies and disposes one case; failures become a result with `error`, never a
 * throw. `pctPeak` is left null (see `withPeaks`).
 */
export async function runCase(eng: Engine, c: BenchCase, opts: TimingOptions): Promise<BenchResult> {
  const base: BenchResult = {
    kernel: c.kernel,
    shape: c.shape,
    bound: c.bound,
    ms: null,
    timer: null,
    gpuMs: null,
    wallMs: null,
    gflops: null,
    gbps: null,
    pctPeak: null,
    inner: 0,
  };
  let prepared: Prepared | null = null;
  try {
    prepared = await c.setup(eng);
    const t = await timeRuns(eng, prepared.run, opts);
    const ms = t.gpuMs ?? t.wallMs;
    const gflops = prepared.flops ? prepared.flops / ms / 1e6 : null;
    const gbps = prepared.bytes ? prepared.bytes / ms / 1e6 : null;
    const wrong = prepared.verify ? await prepared.verify() : null;
    const timed = {
      ...base,
      ms,
      timer: t.gpuMs !== null ? ('gpu' as const) : ('wall' as const),
      gpuMs: t.gpuMs,
      wallMs: t.wallMs,
      gflops,
      gbps,
      pctPeak: null,
      inner: t.inner,
    };
    // a fast wrong answer keeps its timing but is reported as an error
    return wrong ? { ...timed, error: `WRONG RESULT: ${wrong}` } : timed;
  } catch (e) {
    // keep going: one broken kernel must not hide the others' numbers
    try {
      await eng.sync();
    } catch {
      /* the error already being reported */
    }
    return { ...base, error: String((e as Error)?.message ?? e).split('\n')[0] };
  } finally {
    prepared?.dispose();
  }
}

/** Fills in `pctPeak`: GFLOP/s of compute-bound cases over peaks.gflops, GB/s of memory-bound over peaks.gbps. */
export function withPeaks(results: BenchResult[], peaks: Peaks): BenchResult[] {
  return results.map((r) => {
    const pct =
      r.bound === 'compute' ? r.gflops && (100 * r.gflops) / peaks.gflops : r.gbps && (100 * r.gbps) / peaks.gbps;
    return { ...r, pctPeak: pct || null };
  });
}

/** Three significant digits (no exponent), '–' for a missing value. */
export function fmt(x: number | null): string {
  if (x === null || !Number.isFinite(x)) return '–';
  if (x >= 100) return x.toFixed(0);
  if (x >= 10) return x.toFixed(1);
  if (x >= 1) return x.toFixed(2);
  return x.toPrecision(3);
}

function fmtMs(x: number | null): string {
  if (x === null) return '–';
  return x >= 100 ? x.toFixed(1) : x >= 1 ? x.toFixed(3) : x.toFixed(4);
}

/** A markdown table: kernel, shape, ms, GFLOP/s, GB/s, % of the matching measured peak, wall ms, note. */
export function formatTable(results: BenchResult[]): string {
  const head = ['kernel', 'shape', 'ms', 'GFLOP/s', 'GB/s', '% peak', 'wall ms', 'note'];
  const rows = results.map((r) => [
    r.kernel,
    r.shape,
    fmtMs(r.ms),
    fmt(r.gflops),
    fmt(r.gbps),
    fmt(r.pctPeak),
    fmtMs(r.wallMs),
    r.error ?? '',
  ]);
  const numeric = (i: number) => i >= 2 && i <= 6;
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i].length)));
  const line = (cells: string[]) =>
    `| ${cells.map((c, i) => (numeric(i) ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join(' | ')} |`;
  const rule = `|${widths.map((w, i) => (numeric(i) ? `${'-'.repeat(w + 1)}:` : '-'.repeat(w + 2))).join('|')}|`;
  return [line(head), rule, ...rows.map(line)].join('\n');
}

/** GFLOP/s as "31.2 TFLOP/s" or "41.0 GFLOP/s". */
export function fmtFlops(gflops: number): string {
  return gflops >= 1000 ? `${fmt(gflops / 1000)} TFLOP/s` : `${fmt(gflops)} GFLOP/s`;
}
