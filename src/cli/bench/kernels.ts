/**
 * `moc bench kernels [--quick] [--tune] [--json PATH] [--filter TEXT] [--samples N]`
 *
 * Measures this device's own peaks first — memory bandwidth with a large vec4 copy, f32 throughput
 * with a large matmul — then times every kernel case (list below) and prints one markdown table,
 * last: kernel, shape, ms, GFLOP/s, GB/s, % of the matching measured peak, wall ms. `--tune` also
 * times every matmul tile config at the peak size (both B layouts, each result spot-checked
 * against float64 dot products) and makes the fastest correct one the default for the cases.
 * `--quick` uses small sizes (SwiftShader, CI).
 *
 * Adding a kernel: append a case to `cases()` — a name, a shape, the bound, and a setup that
 * uploads inputs and returns `run` plus the FLOPs or bytes of one run.
 */
import { writeFileSync } from 'node:fs';
import { Engine } from '../../engine/engine.ts';
import { nodeGpu } from '../../engine/host-node.ts';
import { chunkMean } from '../../engine/kernels/chunk-mean.ts';
import { copy, copyBytes } from '../../engine/kernels/copy.ts';
import { binary, unary } from '../../engine/kernels/elementwise.ts';
import { flashAttention } from '../../engine/kernels/flash-attention.ts';
import {
  MATMUL_CONFIGS,
  checkConfig,
  describeMatmulConfig,
  matmul,
  matmulConfig,
  matmulFlops,
  setMatmulConfig,
  type MatmulConfig,
} from '../../engine/kernels/matmul.ts';
import { mocRoute } from '../../engine/kernels/moc-route.ts';
import { modulate } from '../../engine/kernels/modulate.ts';
import { norm } from '../../engine/kernels/norm.ts';
import { patchify } from '../../engine/kernels/patchify.ts';
import { rope } from '../../engine/kernels/rope.ts';
import { rowLayout } from '../../engine/kernels/row-layout.ts';
import { softmax } from '../../engine/kernels/softmax.ts';
import { Rng } from '../../engine/random.ts';
import type { Tensor } from '../../engine/tensor.ts';
import { ropeTables } from '../../model/dit-state.ts';
import {
  fmt,
  fmtFlops,
  formatTable,
  runCase,
  withPeaks,
  type BenchCase,
  type BenchResult,
  type Peaks,
  type Prepared,
  type TimingOptions,
} from './harness.ts';

export interface KernelsArgs {
  quick: boolean;
  tune: boolean;
  json: string | null;
  filter: string | null;
  samples: number | null;
}

/** Problem sizes: a small DiT (C = H·D) over a long multi-shot video, or tiny ones for --quick. */
function sizes(quick: boolean) {
  return quick
    ? { T: 256, H: 2, D: 32, attnN: 128, mm: 256, mmBig: 0, copyN: 1 << 18, frames: 4, shots: 4, chunk: 32 }
    : { T: 16384, H: 6, D: 64, attnN: 4096, mm: 4096, mmBig: 8192, copyN: 1 << 26, frames: 256, shots: 4, chunk: 64 };
}
type Sizes = ReturnType<typeof sizes>;

function randoms(n: number, seed: number, scale = 1): Float32Array {
  const rng = new Rng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = (rng.next() * 2 - 1) * scale;
  return out;
}

/** A prepared case over tensors it owns (disposed afterwards). */
function owned(
  tensors: Tensor[],
  run: () => Promise<unknown>,
  metrics: { flops?: number; bytes?: number },
  verify?: () => Promise<string | null>,
): Prepared {
  return { run, ...metrics, verify, dispose: () => tensors.forEach((t) => t.dispose()) };
}

/**
 * Compares `samples` entries of a GPU matmul result with float64 dot products; returns a
 * one-line description of the first mismatch, or null.
 */
export async function spotCheckMatmul(
  eng: Engine,
  out: Tensor,
  a: Float32Array,
  b: Float32Array,
  bias: Float32Array | null,
  M: number,
  N: number,
  K: number,
  transB: boolean,
  samples = 64,
): Promise<string | null> {
  const got = (await eng.read(out)) as Float32Array;
  const rng = new Rng(M + N + K);
  for (let s = 0; s < samples; s++) {
    const m = s === 0 ? M - 1 : rng.int(M);
    const n = s === 0 ? N - 1 : rng.int(N);
    let ref = bias ? bias[n] : 0;
    let mag = Math.abs(ref);
    for (let k = 0; k < K; k++) {
      const t = a[m * K + k] * (transB ? b[n * K + k] : b[k * N + n]);
      ref += t;
      mag += Math.abs(t);
    }
    const v = got[m * N + n];
    if (!(Math.abs(v - ref) <= 1e-4 * mag + 1e-6)) return `out[${m}, ${n}] = ${v}, float64 reference ${ref}`;
  }
  return null;
}

function matmulCase(
  kernel: string,
  M: number,
  N: number,
  K: number,
  transB: boolean,
  withBias: boolean,
  config?: MatmulConfig,
): BenchCase {
  return {
    kernel,
    shape: `${M}×${N}×${K}${transB ? ' Bᵀ' : ''}${withBias ? ' +bias' : ''}`,
    bound: 'compute',
    async setup(eng) {
      const a = randoms(M * K, M * 3 + K);
      const b = randoms(K * N, N * 5 + K, 1 / Math.sqrt(K));
      const bias = withBias ? randoms(N, N) : null;
      const ta = eng.upload(a, [M, K], 'bench.a');
      const tb = eng.upload(b, transB ? [N, K] : [K, N], 'bench.b');
      const tbias = bias ? eng.upload(bias, [N], 'bench.bias') : undefined;
      const out = eng.tensor([M, N], 'f32', 'bench.out');
      eng.poison(out);
      const run = () => matmul(eng, ta, tb, { transB, bias: tbias, out, config });
      const verify = () => spotCheckMatmul(eng, out, a, b, bias, M, N, K, transB);
      return owned([ta, tb, out, ...(tbias ? [tbias] : [])], run, { flops: matmulFlops(M, N, K) }, verify);
    },
  };
}

function copyCase(n: number): BenchCase {
  return {
    kernel: 'copy',
    shape: `${n} f32 (${(n * 4) / 2 ** 20} MiB)`,
    bound: 'memory',
    async setup(eng) {
      const data = randoms(n, 1);
      const src = eng.upload(data, [n], 'bench.src');
      const out = eng.tensor([n], 'f32', 'bench.out');
      eng.poison(out);
      const verify = async () => {
        const got = (await eng.read(out)) as Float32Array;
        const bad = [0, n - 1, n >> 1, n >> 2].find((i) => !Object.is(got[i], data[i]));
        return bad === undefined ? null : `out[${bad}] = ${got[bad]}, want ${data[bad]}`;
      };
      return owned([src, out], () => copy(eng, src, out), { bytes: copyBytes(src) }, verify);
    },
  };
}

/** Every case of the suite, in table order. Bytes are the least each kernel must move. */
export function cases(s: Sizes): BenchCase[] {
  const { T, H, D } = s;
  const C = H * D;
  const list: BenchCase[] = [
    {
      kernel: 'elementwise.add',
      shape: `[${T}, ${C}] + [${C}]`,
      bound: 'memory',
      async setup(eng) {
        const x = eng.upload(randoms(T * C, 2), [T, C]);
        const y = eng.upload(randoms(C, 3), [C]);
        const out = eng.tensor([T, C]);
        return owned([x, y, out], () => binary(eng, 'add', x, y, out), { bytes: (2 * T * C + C) * 4 });
      },
    },
    {
      kernel: 'elementwise.gelu',
      shape: `[${T}, ${4 * C}]`,
      bound: 'memory',
      async setup(eng) {
        const x = eng.upload(randoms(T * 4 * C, 4), [T, 4 * C]);
        const out = eng.tensor([T, 4 * C]);
        return owned([x, out], () => unary(eng, 'gelu', x, out), { bytes: 2 * T * 4 * C * 4 });
      },
    },
    {
      kernel: 'norm.layer',
      shape: `[${T}, ${C}]`,
      bound: 'memory',
      async setup(eng) {
        const x = eng.upload(randoms(T * C, 5), [T, C]);
        const out = eng.tensor([T, C]);
        return owned([x, out], () => norm(eng, 'layer', x, { out }), { bytes: 2 * T * C * 4 });
      },
    },
    {
      kernel: 'norm.rms (qk)',
      shape: `[${H}, ${T}, ${D}] +weight`,
      bound: 'memory',
      async setup(eng) {
        const x = eng.upload(randoms(H * T * D, 6), [H, T, D]);
        const w = eng.upload(randoms(D, 7), [D]);
        const out = eng.tensor([H, T, D]);
        return owned([x, w, out], () => norm(eng, 'rms', x, { weight: w, out }), { bytes: 2 * H * T * D * 4 });
      },
    },
    {
      kernel: 'modulate',
      shape: `[${T}, ${C}], ${s.shots} shots`,
      bound: 'memory',
      async setup(eng) {
        const x = eng.upload(randoms(T * C, 8), [T, C]);
        const table = eng.upload(randoms(s.shots * 6 * C, 9), [s.shots, 6 * C]);
        const seg = eng.upload(
          Int32Array.from({ length: T }, (_, i) => Math.floor((i * s.shots) / T)),
          [T],
        );
        const out = eng.tensor([T, C]);
        const run = () => modulate(eng, x, { table, chunk: 0 }, { table, chunk: 1 }, seg, out);
        return owned([x, table, seg, out], run, { bytes: (2 * T * C + T) * 4 });
      },
    },
    {
      kernel: 'softmax',
      shape: `[${H * s.attnN}, ${s.attnN}]`,
      bound: 'memory',
      async setup(eng) {
        const n = H * s.attnN * s.attnN;
        const x = eng.upload(randoms(n, 10, 4), [H * s.attnN, s.attnN]);
        const out = eng.tensor([H * s.attnN, s.attnN]);
        return owned([x, out], () => softmax(eng, x, out), { bytes: 2 * n * 4 });
      },
    },
    {
      kernel: 'rope',
      shape: `[${H}, ${T}, ${D}]`,
      bound: 'memory',
      async setup(eng) {
        const x = eng.upload(randoms(H * T * D, 11), [H, T, D]);
        const tables = ropeTables(
          Float32Array.from({ length: T * 3 }, (_, i) => (i * 7) % 64),
          D,
          10000,
        );
        const cos = eng.upload(tables.cos, [T, D]);
        const sin = eng.upload(tables.sin, [T, D]);
        const out = eng.tensor([H, T, D]);
        return owned([x, cos, sin, out], () => rope(eng, x, cos, sin, out), { bytes: (2 * H * T * D + 2 * T * D) * 4 });
      },
    },
    {
      kernel: 'patchify',
      shape: `[${s.frames}, 3, 64, 64] p4`,
      bound: 'memory',
      async setup(eng) {
        const n = s.frames * 3 * 64 * 64;
        const frames = eng.upload(randoms(n, 12), [s.frames, 3, 64, 64]);
        const out = eng.tensor([s.frames * 256, 48]);
        return owned([frames, out], () => patchify(eng, frames, 4, out), { bytes: 2 * n * 4 });
      },
    },
    {
      kernel: 'chunk-mean',
      shape: `[${H}, ${T}, ${D}], chunks of ${s.chunk}`,
      bound: 'memory',
      async setup(eng) {
        const nc = Math.ceil(T / s.chunk);
        const x = eng.upload(randoms(H * T * D, 13), [H, T, D]);
        const start = eng.upload(
          Int32Array.from({ length: nc }, (_, c) => c * s.chunk),
          [nc],
        );
        const end = eng.upload(
          Int32Array.from({ length: nc }, (_, c) => Math.min(T, (c + 1) * s.chunk)),
          [nc],
        );
        const out = eng.tensor([H, nc, D]);
        return owned([x, start, end, out], () => chunkMean(eng, x, start, end, out), {
          bytes: (H * T * D + H * nc * D) * 4,
        });
      },
    },
    {
      kernel: 'moc-route',
      shape: `[${H}, ${T}, ${D}], ${Math.ceil(T / s.chunk)} chunks, top-4`,
      bound: 'compute',
      async setup(eng) {
        const nc = Math.ceil(T / s.chunk);
        const q = eng.upload(randoms(H * T * D, 14), [H, T, D]);
        const desc = eng.upload(randoms(H * nc * D, 15), [H, nc, D]);
        const start = eng.upload(
          Int32Array.from({ length: nc }, (_, c) => c * s.chunk),
          [nc],
        );
        const kind = eng.upload(
          Int32Array.from({ length: nc }, () => 1),
          [nc],
        );
        const shot = eng.upload(
          Int32Array.from({ length: nc }, (_, c) => Math.floor((c * s.shots) / nc)),
          [nc],
        );
        const out = eng.tensor([H, T, 4], 'i32');
        const run = () => mocRoute(eng, q, desc, { start, kind, shot }, { topK: 4, causal: false }, out);
        // every query scores every chunk of the other shots: 2·D flops each
        const scored = H * T * nc * (1 - 1 / s.shots);
        return owned([q, desc, start, kind, shot, out], run, { flops: 2 * D * scored });
      },
    },
    {
      kernel: 'flash-attention',
      shape: `H=${H} N=${s.attnN} D=${D}`,
      bound: 'compute',
      async setup(eng) {
        const n = H * s.attnN * D;
        const [q, k, v] = [16, 17, 18].map((seed) => eng.upload(randoms(n, seed), [H, s.attnN, D]));
        const out = eng.tensor([H, s.attnN, D]);
        return owned([q, k, v, out], () => flashAttention(eng, q, k, v, { out }), {
          flops: 4 * s.attnN * s.attnN * D * H,
        });
      },
    },
    matmulCase('matmul', s.mm, s.mm, s.mm, false, false),
    matmulCase('matmul', s.mm, s.mm, s.mm, true, false),
    matmulCase('matmul', s.mm, s.mm, s.mm, true, true),
    matmulCase('matmul qkv', T, 3 * C, C, true, true),
    matmulCase('matmul mlp.up', T, 4 * C, C, true, true),
    matmulCase('matmul mlp.down', T, C, 4 * C, true, true),
  ];
  if (s.mmBig) list.push(matmulCase('matmul', s.mmBig, s.mmBig, s.mmBig, false, false));
  return list;
}

interface TuneRow {
  name: string;
  config: MatmulConfig;
  nn: BenchResult;
  nt: BenchResult;
}

async function tune(eng: Engine, n: number, opts: TimingOptions, log: (s: string) => void): Promise<TuneRow[]> {
  const rows: TuneRow[] = [];
  for (const [name, config] of Object.entries(MATMUL_CONFIGS)) {
    try {
      checkConfig(eng, config);
    } catch (e) {
      log(`  ${name}: skipped (${(e as Error).message})`);
      continue;
    }
    const nn = await runCase(eng, matmulCase(`matmul ${name}`, n, n, n, false, false, config), opts);
    const nt = await runCase(eng, matmulCase(`matmul ${name}`, n, n, n, true, false, config), opts);
    const tf = (r: BenchResult) => (r.error ? r.error : fmtFlops(r.gflops ?? 0));
    log(`  ${name.padEnd(16)} a·B ${tf(nn)}   a·Bᵀ ${tf(nt)}`);
    rows.push({ name, config, nn, nt });
  }
  return rows;
}

function tuneTable(rows: TuneRow[], best: string | null): string {
  const head =
    '| config | tile M×N, per invocation, BK, groupM (tiled) | a·B ms | a·B TFLOP/s | a·Bᵀ ms | a·Bᵀ TFLOP/s |';
  const rule = '|---|---|--:|--:|--:|--:|';
  const cell = (r: BenchResult) => [
    r.ms === null ? '–' : r.ms.toFixed(3),
    r.error ? r.error.slice(0, 60) : fmt((r.gflops ?? 0) / 1000),
  ];
  const lines = rows.map((r) => {
    return `| ${r.name}${r.name === best ? ' (best)' : ''} | ${describeMatmulConfig(r.config)} | ${cell(r.nn).join(' | ')} | ${cell(r.nt).join(' | ')} |`;
  });
  return [head, rule, ...lines].join('\n');
}

const ok = (r: BenchResult) => !r.error;

/** Runs the suite; returns the exit code (1 when a case failed or gave a wrong result). */
export async function run(args: KernelsArgs): Promise<number> {
  const s = sizes(args.quick);
  const opts: TimingOptions = args.quick
    ? { warmup: 1, samples: args.samples ?? 3, minSampleMs: 0, maxInner: 1 }
    : { warmup: 3, samples: args.samples ?? 10, minSampleMs: 25, maxInner: 200 };
  const log = (line: string) => console.log(line);

  const eng = await Engine.create(await nodeGpu());
  const started = performance.now();
  log(`# bench kernels${args.quick ? ' --quick' : ''}${args.tune ? ' --tune' : ''}`);
  for (const line of eng.capabilities()) log(line);
  log(
    `timer: ${eng.features.timestamp ? 'GPU timestamps per compute pass, median over samples' : 'wall clock around sync() (no timestamp-query), median over samples'}`,
  );

  // The device's own ceilings, measured with this engine's kernels: the first two rows.
  const probes = [
    await runCase(eng, copyCase(s.copyN), opts),
    await runCase(eng, matmulCase('matmul', s.mm, s.mm, s.mm, false, false), opts),
  ];
  probes[0].kernel = 'copy (bandwidth probe)';
  probes[1].kernel = 'matmul (f32 probe)';
  for (const r of probes) log(`  ${r.kernel} ${r.shape}: ${r.error ? `error: ${r.error}` : `${r.ms?.toFixed(4)} ms`}`);
  log(
    `default matmul config at ${s.mm}³: ${JSON.stringify(matmulConfig(eng, s.mm, s.mm))}; norm/softmax row layout: ${rowLayout(eng)}`,
  );

  let tuneRows: TuneRow[] = [];
  let best: string | null = null;
  if (args.tune) {
    log(`\n## matmul configs at ${s.mm}³ (every result spot-checked against float64)`);
    tuneRows = await tune(eng, s.mm, opts, log);
    let bestScore = 0;
    for (const r of tuneRows) {
      if (!ok(r.nn) || !ok(r.nt)) continue;
      const score = 2 / (1 / (r.nn.gflops ?? 0) + 1 / (r.nt.gflops ?? 0)); // harmonic mean of both layouts
      if (score > bestScore) [bestScore, best] = [score, r.name];
    }
    if (best) setMatmulConfig(eng, MATMUL_CONFIGS[best as keyof typeof MATMUL_CONFIGS]);
    log(`\n${tuneTable(tuneRows, best)}`);
    log(`best config (harmonic mean of a·B and a·Bᵀ): ${best ?? 'none'}; the default for the large matmuls below`);
  }

  log('');
  const selected = cases(s).filter((c) => !args.filter || `${c.kernel} ${c.shape}`.includes(args.filter));
  const measured: BenchResult[] = [];
  for (const c of selected) {
    const r = await runCase(eng, c, opts);
    measured.push(r);
    log(`  ${c.kernel} ${c.shape}: ${r.error ? `error: ${r.error}` : `${r.ms?.toFixed(4)} ms`}`);
  }

  // Peaks: the best correct copy and matmul this run measured (probes, tuning, cases).
  const all = [...probes, ...tuneRows.flatMap((r) => [r.nn, r.nt]), ...measured].filter(ok);
  const peaks: Peaks = {
    gbps: Math.max(0, ...all.filter((r) => r.kernel.startsWith('copy')).map((r) => r.gbps ?? 0)),
    gflops: Math.max(0, ...all.filter((r) => r.kernel.startsWith('matmul')).map((r) => r.gflops ?? 0)),
  };
  const results = withPeaks([...probes, ...measured], peaks);

  if (args.json) {
    const doc = {
      suite: 'kernels',
      quick: args.quick,
      date: new Date().toISOString(),
      adapter: eng.adapter,
      features: eng.features,
      timing: opts,
      peaks,
      best,
      tune: tuneRows,
      results,
    };
    writeFileSync(args.json, `${JSON.stringify(doc, null, 2)}\n`);
    log(`wrote ${args.json}`);
  }
  const timer = eng.features.timestamp ? 'GPU' : 'wall';
  log(`\n## kernels: ${eng.describe()}`);
  log(
    `measured peaks: ${fmt(peaks.gbps)} GB/s copy (read + write), ${fmtFlops(peaks.gflops)} f32 matmul; ms = median ${timer} time per run; ${((performance.now() - started) / 1000).toFixed(1)} s in all`,
  );
  log(formatTable(results));
  eng.destroy();
  return results.every(ok) && tuneRows.every((r) => ok(r.nn) && ok(r.nt)) ? 0 : 1;
}
