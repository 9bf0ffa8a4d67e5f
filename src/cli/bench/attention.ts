/**
 * `moc bench attention [--quick] [--tune] [--json PATH] [--filter TEXT] [--samples N] [--sdpa]`
 *
 * MoC sparse attention against dense flash attention on layouts like the paper's (MOC.md §2):
 * frames of 256 tokens, shots of 16 frames, captions of 16 tokens (a global one and one per
 * shot), chunkFrames 1, H=4, D=64, top-k 4, causal routing; 1 to 32 shots (4.1k to 131k tokens).
 * `--quick`: frames of 16 tokens, shots of 4 frames, captions of 4, H=2, 1/2/4 shots (72 to 276
 * tokens: SwiftShader, CI).
 *
 * Per size: MoC time split into chunk means, routing and sparse attention (and 'route-view': what
 * a 'spatial' routing view adds, MOC.md §3b: q and k turned once more by [N, D] rope tables into
 * tensors of their own; chunk means and routing then read those, at the same cost;
 * 'unrotated' adds at most one such copy), for every kernel
 * design (MOC_DESIGNS: MOC.md §5's 'union' = A and 'grouped' = B, and B's tuning variants
 * 'grouped-direct' and 'grouped-shared', see src/engine/kernels/moc-attention.ts), and in
 * total; dense flash attention
 * (src/engine/kernels/flash-attention.ts); sparsity; effective TFLOP/s with 4·D FLOPs per
 * visited (query, key) pair, routing 2·D per (query, candidate chunk), reported apart; speed-up;
 * time per token and its growth from 16k to 128k tokens. Three synthetic regimes (`makeQkv`):
 * 'coherent' (the queries of a frame share a topic and mostly route the same chunks, as MOC.md §5
 * expects of video: about 7 distinct routed chunks per 64-query tile at top-4) for every figure;
 * 'mixed' (a weaker shared topic, about 40 per tile) and 'random' (i.i.d. noise: routing
 * incoherent within a tile, design A's worst case) for the attention kernels only, so the
 * choice between the designs can be read against how coherent real routing turns out to be.
 * Visited-pair throughput of each design against dense (the issue's ≥ 70 % goal) in a table of
 * its own. `--tune` also times every attention tile of every design at one size. `--sdpa` runs bench/sdpa.py (PyTorch dense SDPA, f32 and bf16) for the same sizes
 * and reports where MoC overtakes PyTorch dense f32.
 *
 * Timing: the shared harness (harness.ts): warm-up, then the median of samples, GPU timestamps
 * per pass when the adapter has them, else wall time around sync(). Correctness: before timing,
 * the whole pipeline (means, routing, both designs) is compared with the CPU reference
 * (src/model/moc-reference.ts) on a small routed layout; at every size every design must agree
 * with design A, every output must be finite, and where nothing is routed (one shot) MoC must
 * equal dense. A failed check marks the size WRONG and the exit code 1, so no broken kernel's
 * speed is reported as a result.
 *
 * This file is the measuring loop: the GPU problem of one size, the checks, the timing of every
 * case, the tile sweep and the PyTorch run. The layouts, regimes and routing statistics are in
 * attention-layouts.ts; the tables, verdicts and the --json document in attention-report.ts.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Engine } from '../../engine/engine.ts';
import { nodeGpu } from '../../engine/host-node.ts';
import { chunkMean } from '../../engine/kernels/chunk-mean.ts';
import { FLASH_TILE_CONFIGS, flashAttention } from '../../engine/kernels/flash-attention.ts';
import {
  MOC_DESIGNS,
  mocAttention,
  mocTile,
  mocTileProblem,
  type MocDesign,
} from '../../engine/kernels/moc-attention.ts';
import { mocRoute } from '../../engine/kernels/moc-route.ts';
import { rope } from '../../engine/kernels/rope.ts';
import type { Tensor } from '../../engine/tensor.ts';
import type { ChunkTable } from '../../model/layout.ts';
import { mocAttentionReference, mocReference } from '../../model/moc-reference.ts';
import type { BenchArgs } from '../bench.ts';
import {
  CAUSAL,
  geometry,
  layout,
  makeQkv,
  REGIMES,
  routeStats,
  type Geometry,
  type Regime,
} from './attention-layouts.ts';
import {
  jsonDocument,
  report,
  type AttentionRun,
  type CaseTime,
  type SdpaResult,
  type SizeRow,
  type TuneRow,
} from './attention-report.ts';
import { fmt, timeRuns, type TimingOptions } from './harness.ts';

/** The tensors of one size on the GPU and the kernel calls the cases time. */
class Problem {
  readonly N: number;
  readonly q: Tensor;
  readonly k: Tensor;
  readonly v: Tensor;
  private readonly cols: Record<'start' | 'end' | 'kind' | 'shot', Tensor>;
  readonly desc: Tensor;
  readonly routed: Tensor;
  readonly out: Record<MocDesign | 'dense', Tensor>;
  private readonly view: Record<'cos' | 'sin' | 'q' | 'k', Tensor>; // the routing view's tables and q, k

  constructor(
    readonly eng: Engine,
    readonly g: Geometry,
    readonly table: ChunkTable,
  ) {
    const { H, D } = g;
    const N = (this.N = table.n);
    const C = table.start.length;
    [this.q, this.k, this.v] = ['q', 'k', 'v'].map((n) => eng.tensor([H, N, D], 'f32', `bench.${n}`));
    this.cols = {
      start: eng.upload(table.start, [C]),
      end: eng.upload(table.end, [C]),
      kind: eng.upload(table.kind, [C]),
      shot: eng.upload(table.shot, [C]),
    };
    this.desc = eng.tensor([H, C, D], 'f32', 'bench.desc');
    this.routed = eng.tensor([H, N, g.topK], 'i32', 'bench.routed');
    this.out = Object.fromEntries([...MOC_DESIGNS, 'dense'].map((d) => [d, eng.tensor([H, N, D])])) as Record<
      MocDesign | 'dense',
      Tensor
    >;
    const angle = Float32Array.from({ length: N * D }, (_, j) => ((j % D) >> 1) * 0.01 + Math.floor(j / D) * 1e-4);
    this.view = {
      cos: eng.upload(angle.map(Math.cos), [N, D], 'bench.view-cos'),
      sin: eng.upload(
        angle.map((a, j) => (j % 2 ? 1 : -1) * Math.sin(a)),
        [N, D],
        'bench.view-sin',
      ),
      q: eng.tensor([H, N, D], 'f32', 'bench.q-route'),
      k: eng.tensor([H, N, D], 'f32', 'bench.k-route'),
    };
  }

  load(x: { q: Float32Array; k: Float32Array; v: Float32Array }): void {
    this.eng.write(this.q, x.q);
    this.eng.write(this.k, x.k);
    this.eng.write(this.v, x.v);
  }

  mean = () => chunkMean(this.eng, this.k, this.cols.start, this.cols.end, this.desc);
  route = () => mocRoute(this.eng, this.q, this.desc, this.cols, { topK: this.g.topK, causal: CAUSAL }, this.routed);
  attend = (design: MocDesign, tile?: { bq: number; bk: number; ncol: number }, out = this.out[design]) =>
    mocAttention(this.eng, this.q, this.k, this.v, this.table, this.routed, { design, tile, out });
  total = async (design: MocDesign) => {
    await this.mean();
    await this.route();
    await this.attend(design);
  };
  dense = () => flashAttention(this.eng, this.q, this.k, this.v, { out: this.out.dense });
  routeView = async () => {
    await rope(this.eng, this.q, this.view.cos, this.view.sin, this.view.q);
    await rope(this.eng, this.k, this.view.cos, this.view.sin, this.view.k);
  };

  async read(t: Tensor): Promise<Float32Array> {
    return (await this.eng.read(t)) as Float32Array;
  }

  async readRouted(): Promise<Int32Array> {
    return (await this.eng.read(this.routed)) as Int32Array;
  }

  dispose(): void {
    [
      this.q,
      this.k,
      this.v,
      this.desc,
      this.routed,
      ...Object.values(this.cols),
      ...Object.values(this.out),
      ...Object.values(this.view),
    ].forEach((t) => t.dispose());
  }
}

/** Worst |got − ref| / (atol + rtol·|ref|) (≤ 1 passes; NaN anywhere gives Infinity). */
function excess(got: Float32Array, ref: ArrayLike<number>, atol: number, rtol: number): number {
  let worst = 0;
  for (let i = 0; i < got.length; i++) {
    const e = Math.abs(got[i] - ref[i]) / (atol + rtol * Math.abs(ref[i]));
    if (!(e <= worst)) worst = Number.isNaN(e) ? Infinity : e;
  }
  return worst;
}

const TOL = { atol: 1e-4, rtol: 1e-3 }; // two f32 kernels summing keys in different orders differ by ~1e-6

/**
 * The whole GPU pipeline on a small routed layout against src/model/moc-reference.ts: routing
 * entries (near ties may differ), then attention of both designs given the GPU's routing.
 * Returns a one-line report and whether it passed.
 */
async function referenceCheck(eng: Engine, g: Geometry, table: ChunkTable): Promise<{ line: string; ok: boolean }> {
  const p = new Problem(eng, g, table);
  try {
    const x = makeQkv(table, g.H, g.D, 'coherent', 7);
    p.load(x);
    await p.mean();
    await p.route();
    for (const d of MOC_DESIGNS) await p.attend(d);
    const routed = await p.readRouted();
    const dims = { H: g.H, N: table.n, D: g.D };
    const ref = mocReference(x.q, x.k, x.v, dims, table, { topK: g.topK, causal: CAUSAL, mode: 'moc' });
    const same = routed.reduce((n, r, i) => n + (r === ref.routed[i] ? 1 : 0), 0) / routed.length;
    const want = mocAttentionReference(x.q, x.k, x.v, dims, table, routed, g.topK, 'moc');
    const errs = await Promise.all(MOC_DESIGNS.map(async (d) => excess(await p.read(p.out[d]), want, 2e-5, 2e-4)));
    const ok = same >= 0.99 && errs.every((e) => e <= 1);
    const line = `reference check (${table.start.length} chunks, N=${table.n}, H=${g.H}): routing ${(100 * same).toFixed(2)}% equal to the reference, attention error/tolerance ${MOC_DESIGNS.map((d, i) => `${d} ${fmt(errs[i])}`).join(', ')}: ${ok ? 'ok' : 'FAILED'}`;
    return { line, ok };
  } finally {
    p.dispose();
  }
}

const HEAVY_FLOPS = 4e12; // a run this large gets 1 warm-up and at most 5 samples of one run

function optsFor(base: TimingOptions, flops: number): TimingOptions {
  return flops > HEAVY_FLOPS ? { warmup: 1, samples: Math.min(base.samples, 5), minSampleMs: 0, maxInner: 1 } : base;
}

/** Times `fn` unless the filter excludes `name`; never throws. */
async function timeCase(
  eng: Engine,
  name: string,
  fn: () => Promise<unknown>,
  opts: TimingOptions,
  log: (s: string) => void,
): Promise<CaseTime> {
  try {
    const t = await timeRuns(eng, fn, opts);
    const ms = t.gpuMs ?? t.wallMs;
    log(`  ${name}: ${ms.toFixed(3)} ms${t.gpuMs === null ? ' (wall)' : ''}`);
    return { ms, gpuMs: t.gpuMs, wallMs: t.wallMs };
  } catch (e) {
    const error = String((e as Error)?.message ?? e).split('\n')[0];
    log(`  ${name}: error: ${error}`);
    try {
      await eng.sync();
    } catch {
      /* the error already recorded */
    }
    return { ms: null, gpuMs: null, wallMs: null, error };
  }
}

/** Checks the outputs of the last runs of one size and regime; a description of what is wrong, or null. */
async function checkOutputs(p: Problem, regime: Regime, oneShot: boolean, denseRan: boolean): Promise<string | null> {
  const outs = await Promise.all(MOC_DESIGNS.map((d) => p.read(p.out[d])));
  for (const [i, x] of outs.entries()) {
    if (!x.every(Number.isFinite)) return `${regime}: ${MOC_DESIGNS[i]} output has non-finite values`;
  }
  const a = outs[MOC_DESIGNS.indexOf('union')];
  for (const [i, x] of outs.entries()) {
    const e = excess(a, x, TOL.atol, TOL.rtol);
    if (e > 1) return `${regime}: union and ${MOC_DESIGNS[i]} disagree (error/tolerance ${fmt(e)})`;
  }
  if (regime === 'coherent' && denseRan) {
    const dense = await p.read(p.out.dense);
    if (!dense.every(Number.isFinite)) return 'dense output has non-finite values';
    if (oneShot) {
      // every query of the shot sees every token: its rows (all but the global caption's) are dense
      const { H, D } = p.g;
      const first = p.table.shot[0] === -1 ? p.table.end[0] : 0;
      const rows = (x: Float32Array, h: number) => x.subarray((h * p.N + first) * D, (h + 1) * p.N * D);
      const ad = Math.max(
        ...Array.from({ length: H }, (_, h) => excess(rows(a, h), rows(dense, h), TOL.atol, TOL.rtol)),
      );
      if (ad > 1) return `one shot: MoC and dense disagree on the shot's rows (error/tolerance ${fmt(ad)})`;
    }
  }
  return null;
}

async function benchSize(
  eng: Engine,
  g: Geometry,
  shots: number,
  args: BenchArgs,
  base: TimingOptions,
  log: (s: string) => void,
): Promise<SizeRow | null> {
  const table = layout(g, shots);
  const N = table.n;
  const { H, D } = g;
  const want = (name: string) => !args.filter || `${name} N=${N}`.includes(args.filter);
  const names = [
    'dense',
    'chunk-mean',
    'route',
    'route-view',
    ...MOC_DESIGNS.flatMap((d) => [`total ${d}`, ...REGIMES.map((r) => `attention ${d} ${r}`)]),
  ];
  if (!names.some(want)) return null;
  log(`\n## ${shots} shot${shots > 1 ? 's' : ''}: N=${N}, ${table.start.length} chunks`);
  const row: SizeRow = { shots, N, chunks: table.start.length, stats: {}, times: {}, wrong: null };
  const p = new Problem(eng, g, table);
  const bq = mocTile(eng, D, g.topK, 'union').bq;
  try {
    for (const regime of REGIMES) {
      const runs: Array<[string, () => Promise<unknown>, number]> = [];
      p.load(makeQkv(table, H, D, regime, 1000 + shots));
      await p.mean();
      await p.route();
      const stats = routeStats(table, await p.readRouted(), g, bq);
      row.stats[regime] = stats;
      log(
        `  ${regime}: sparsity ${(100 * stats.sparsity).toFixed(1)}%, ${fmt(stats.pairs / (H * N))} keys per query; design A computes ${fmt(stats.unionWork)}× the visited pairs; grouped-shared walks ${(100 * stats.sharedRouted).toFixed(0)}% of the routed pairs in its mandatory tiles`,
      );
      const visited = 4 * D * stats.pairs;
      if (regime === 'coherent') {
        runs.push(
          ['chunk-mean', p.mean, 0],
          ['route', p.route, 0],
          ['route-view', p.routeView, 0],
          ['dense', p.dense, 4 * N * N * D * H],
        );
        for (const d of MOC_DESIGNS)
          runs.push([`total ${d}`, () => p.total(d), d === 'union' ? visited * stats.unionWork : visited]);
      }
      for (const d of MOC_DESIGNS)
        runs.push([`attention ${d} ${regime}`, () => p.attend(d), d === 'union' ? visited * stats.unionWork : visited]);
      for (const [name, fn, flops] of runs) {
        if (want(name)) row.times[name] = await timeCase(eng, `${name} N=${N}`, fn, optsFor(base, flops), log);
      }
      const view = row.times['route-view']?.ms;
      if (regime === 'coherent' && view != null) {
        const shares = MOC_DESIGNS.flatMap((d) =>
          row.times[`total ${d}`]?.ms ? [`${d} ${((100 * view) / row.times[`total ${d}`].ms!).toFixed(1)}%`] : [],
        );
        if (shares.length) log(`  route-view (spatial) adds, of MoC total: ${shares.join(', ')}`);
      }
      // the outputs of the last runs (each design and dense wrote its own tensor; dense is checked when timed)
      for (const d of MOC_DESIGNS) if (!want(`attention ${d} ${regime}`)) await p.attend(d);
      row.wrong ??= await checkOutputs(p, regime, shots === 1, want('dense'));
    }
    log(`  check: ${row.wrong ? `WRONG: ${row.wrong}` : 'all designs agree, outputs finite'}`);
  } finally {
    p.dispose();
  }
  return row;
}

/** Every attention tile of both designs at one size, each output compared with the default's. */
async function tune(eng: Engine, g: Geometry, base: TimingOptions, log: (s: string) => void): Promise<TuneRow[]> {
  const table = layout(g, g.tuneShots);
  log(`\n## attention tiles at N=${table.n} (${g.tuneShots} shots)`);
  const p = new Problem(eng, g, table);
  const rows: TuneRow[] = [];
  try {
    const scratch = eng.tensor([g.H, table.n, g.D]);
    for (const regime of REGIMES) {
      p.load(makeQkv(table, g.H, g.D, regime, 2000));
      await p.mean();
      await p.route();
      await p.attend('union');
      const ref = await p.read(p.out.union);
      for (const [tile, t] of Object.entries(FLASH_TILE_CONFIGS)) {
        for (const design of MOC_DESIGNS) {
          let row = rows.find((r) => r.tile === tile && r.design === design);
          if (!row) rows.push((row = { tile, design, ms: { coherent: null, mixed: null, random: null }, wrong: null }));
          const problem = mocTileProblem(eng, g.D, t, g.topK, design);
          if (problem) {
            row.wrong = `skipped: ${problem}`;
            continue;
          }
          const r = await timeCase(eng, `${design} ${tile} ${regime}`, () => p.attend(design, t, scratch), base, log);
          row.ms[regime] = r.ms;
          const e = excess(await p.read(scratch), ref, TOL.atol, TOL.rtol);
          if (r.error || e > 1)
            row.wrong ??= r.error ?? `${regime}: differs from the default (error/tolerance ${fmt(e)})`;
        }
      }
    }
    scratch.dispose();
  } finally {
    p.dispose();
  }
  return rows;
}

/** bench/sdpa.py: from the working directory, or next to the sources or the bundle. */
function sdpaScript(): string | null {
  const here = dirname(fileURLToPath(import.meta.url));
  const candidates = [
    resolve('bench/sdpa.py'),
    resolve(here, '../../../bench/sdpa.py'),
    resolve(here, '../bench/sdpa.py'),
  ];
  return candidates.find((c) => existsSync(c)) ?? null;
}

/** Runs PyTorch's dense SDPA for the sizes; its rows, or a one-line reason it could not. */
function runSdpa(Ns: number[], g: Geometry, log: (s: string) => void): SdpaResult | string {
  const script = sdpaScript();
  if (!script) return 'bench/sdpa.py not found';
  const dir = mkdtempSync(join(tmpdir(), 'moc-sdpa-'));
  try {
    const json = join(dir, 'sdpa.json');
    const argv = [script, '--n', ...Ns.map(String), '--heads', String(g.H), '--dim', String(g.D), '--json', json];
    log(`\n## PyTorch dense attention: python3 ${argv.join(' ')}`);
    const r = spawnSync('python3', argv, { encoding: 'utf8', timeout: 900_000 });
    for (const line of (r.stdout ?? '').trim().split('\n')) if (line) log(`  ${line}`);
    if (r.status !== 0 || !existsSync(json)) {
      const why = r.error?.message ?? (r.stderr ?? '').trim().split('\n').pop() ?? `exit ${r.status}`;
      return `python3 ${script} failed: ${why}`;
    }
    return JSON.parse(readFileSync(json, 'utf8')) as SdpaResult;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Runs the suite; returns the exit code (1 when a check failed or a case errored). */
export async function run(args: BenchArgs): Promise<number> {
  const g = geometry(args.quick);
  const base: TimingOptions = args.quick
    ? { warmup: 0, samples: args.samples ?? 3, minSampleMs: 0, maxInner: 1 } // the sizing run warms up
    : { warmup: 3, samples: args.samples ?? 10, minSampleMs: 25, maxInner: 200 };
  const log = (line: string) => console.log(line);
  const started = performance.now();
  const eng = await Engine.create(await nodeGpu());
  log(
    `# bench attention${args.quick ? ' --quick' : ''}${args.tune ? ' --tune' : ''}${args.sdpa ? ' --sdpa' : ''}${args.filter ? ` --filter ${args.filter}` : ''}`,
  );
  for (const line of eng.capabilities()) log(line);
  log(
    `timer: ${eng.features.timestamp ? 'GPU timestamps per compute pass' : 'wall clock around sync() (no timestamp-query)'}, median over samples`,
  );
  log(
    `layout: frames of ${g.tokensPerFrame} tokens, shots of ${g.framesPerShot} frames, captions of ${g.caption} tokens (global + one per shot), chunkFrames 1; H=${g.H}, D=${g.D}, top-k ${g.topK}, causal; f32`,
  );
  const tiles = MOC_DESIGNS.map((d) => `${d} ${JSON.stringify(mocTile(eng, g.D, g.topK, d))}`).join(', ');
  log(`tiles: ${tiles}`);

  const gate = await referenceCheck(eng, g, args.quick ? layout(g, 2) : layout(g, 3, 64, 4));
  log(gate.line);

  const rows: SizeRow[] = [];
  for (const shots of g.shots) {
    const r = await benchSize(eng, g, shots, args, base, log);
    if (r) rows.push(r);
  }
  const tuneRows = args.tune ? await tune(eng, g, base, log) : [];
  eng.destroy();

  const sdpa =
    args.sdpa && rows.length
      ? runSdpa(
          rows.map((r) => r.N),
          g,
          log,
        )
      : null;
  const result: AttentionRun = {
    quick: args.quick,
    adapter: eng.adapter,
    features: eng.features,
    timing: base,
    geometry: g,
    reference: gate,
    rows,
    tune: tuneRows,
    sdpa,
  };

  if (args.json) {
    writeFileSync(args.json, jsonDocument(result));
    log(`wrote ${args.json}`);
  }

  const failed =
    !gate.ok ||
    rows.some((r) => r.wrong || Object.values(r.times).some((t) => t.error)) ||
    tuneRows.some((r) => r.wrong && !r.wrong.startsWith('skipped'));
  report(result, eng.describe(), started, failed, log);
  return failed ? 1 : 0;
}
