/**
 * `moc bench attention [--quick] [--tune] [--json PATH] [--filter TEXT] [--samples N] [--sdpa]`
 *
 * MoC sparse attention against dense flash attention on layouts like the paper's (MOC.md §2):
 * frames of 256 tokens, shots of 16 frames, captions of 16 tokens (a global one and one per
 * shot), chunkFrames 1, H=4, D=64, top-k 4, causal routing; 1 to 32 shots (4.1k to 131k tokens).
 * `--quick`: frames of 16 tokens, shots of 4 frames, captions of 4, H=2, 1/2/4 shots (72 to 276
 * tokens: SwiftShader, CI).
 *
 * Per size: MoC time split into chunk means, routing and sparse attention, for every kernel
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
import { MOC_DESIGNS, alignTiles, mocAttention, mocPlan, mocSharedChunks, mocTile, mocTileProblem, type MocDesign } from '../../engine/kernels/moc-attention.ts';
import { mocRoute } from '../../engine/kernels/moc-route.ts';
import { Rng } from '../../engine/random.ts';
import type { Tensor } from '../../engine/tensor.ts';
import { buildChunkTable, KIND_VIDEO, type ChunkTable } from '../../model/layout.ts';
import { isCandidate, mocAttentionReference, mocReference, sparsityOf } from '../../model/moc-reference.ts';
import type { BenchArgs } from '../bench.ts';
import { fmt, fmtFlops, timeRuns, type TimingOptions } from './harness.ts';

/** Problem geometry: the paper-like layout, or a small one for --quick. */
interface Geometry {
  H: number;
  D: number;
  topK: number;
  tokensPerFrame: number;
  framesPerShot: number;
  caption: number;
  shots: number[];
  /** Shots of the size --tune sweeps tiles at. */
  tuneShots: number;
}

function geometry(quick: boolean): Geometry {
  return quick
    ? { H: 2, D: 64, topK: 4, tokensPerFrame: 16, framesPerShot: 4, caption: 4, shots: [1, 2, 4], tuneShots: 2 }
    : { H: 4, D: 64, topK: 4, tokensPerFrame: 256, framesPerShot: 16, caption: 16, shots: [1, 2, 4, 8, 16, 32], tuneShots: 8 };
}

const CAUSAL = true;

function layout(g: Geometry, shots: number, tokensPerFrame = g.tokensPerFrame, framesPerShot = g.framesPerShot): ChunkTable {
  return buildChunkTable({
    globalCaptionTokens: g.caption,
    shots: Array.from({ length: shots }, () => ({ captionTokens: g.caption, frames: framesPerShot })),
    tokensPerFrame,
    chunkFrames: 1,
  });
}

type Regime = 'coherent' | 'mixed' | 'random';
const SQRT3 = Math.sqrt(3); // uniform on [−√3, √3): unit variance
const REGIMES: readonly Regime[] = ['coherent', 'mixed', 'random'];
/** Noise on the queries around their frame's topic (measured: ~7 and ~40 distinct top-4 chunks per 64 queries of a frame, of 496 candidates). */
const QUERY_NOISE: Record<Exclude<Regime, 'random'>, number> = { coherent: 0.1, mixed: 0.5 };

/**
 * Seeded q, k, v [H, N, D], noise uniform with unit variance (cheap at 100M values).
 * 'random': all three pure noise. Otherwise per (head, chunk) a content vector u_c and a topic
 * vector t_c; k = u_c(i) + noise, q = t_c(i) + QUERY_NOISE·noise, v = noise: the queries of one
 * frame pick their top-k chunks by a shared topic, routing across frames differs.
 */
function makeQkv(table: ChunkTable, H: number, D: number, regime: Regime, seed: number): { q: Float32Array; k: Float32Array; v: Float32Array } {
  const rng = new Rng(seed);
  const noise = () => (rng.next() * 2 - 1) * SQRT3;
  const N = table.n;
  const C = table.start.length;
  const [q, k, v] = [0, 1, 2].map(() => new Float32Array(H * N * D));
  for (let x = 0; x < v.length; x++) v[x] = noise();
  if (regime === 'random') {
    for (let x = 0; x < q.length; x++) [q[x], k[x]] = [noise(), noise()];
    return { q, k, v };
  }
  const u = new Float32Array(D);
  const t = new Float32Array(D);
  for (let h = 0; h < H; h++) {
    for (let c = 0; c < C; c++) {
      for (let d = 0; d < D; d++) [u[d], t[d]] = [noise(), noise()];
      for (let i = table.start[c]; i < table.end[c]; i++) {
        const o = (h * N + i) * D;
        for (let d = 0; d < D; d++) {
          k[o + d] = u[d] + noise();
          q[o + d] = t[d] + QUERY_NOISE[regime] * noise();
        }
      }
    }
  }
  return { q, k, v };
}

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

  constructor(
    readonly eng: Engine,
    readonly g: Geometry,
    readonly table: ChunkTable,
  ) {
    const { H, D } = g;
    const N = (this.N = table.n);
    const C = table.start.length;
    [this.q, this.k, this.v] = ['q', 'k', 'v'].map((n) => eng.tensor([H, N, D], 'f32', `bench.${n}`));
    this.cols = { start: eng.upload(table.start, [C]), end: eng.upload(table.end, [C]), kind: eng.upload(table.kind, [C]), shot: eng.upload(table.shot, [C]) };
    this.desc = eng.tensor([H, C, D], 'f32', 'bench.desc');
    this.routed = eng.tensor([H, N, g.topK], 'i32', 'bench.routed');
    this.out = Object.fromEntries([...MOC_DESIGNS, 'dense'].map((d) => [d, eng.tensor([H, N, D])])) as Record<MocDesign | 'dense', Tensor>;
  }

  load(x: { q: Float32Array; k: Float32Array; v: Float32Array }): void {
    this.eng.write(this.q, x.q);
    this.eng.write(this.k, x.k);
    this.eng.write(this.v, x.v);
  }

  mean = () => chunkMean(this.eng, this.k, this.cols.start, this.cols.end, this.desc);
  route = () => mocRoute(this.eng, this.q, this.desc, this.cols, { topK: this.g.topK, causal: CAUSAL }, this.routed);
  attend = (design: MocDesign, tile?: { bq: number; bk: number; ncol: number }, out = this.out[design]) => mocAttention(this.eng, this.q, this.k, this.v, this.table, this.routed, { design, tile, out });
  total = async (design: MocDesign) => {
    await this.mean();
    await this.route();
    await this.attend(design);
  };
  dense = () => flashAttention(this.eng, this.q, this.k, this.v, { out: this.out.dense });

  async read(t: Tensor): Promise<Float32Array> {
    return (await this.eng.read(t)) as Float32Array;
  }

  async readRouted(): Promise<Int32Array> {
    return (await this.eng.read(this.routed)) as Int32Array;
  }

  dispose(): void {
    [this.q, this.k, this.v, this.desc, this.routed, ...Object.values(this.cols), ...Object.values(this.out)].forEach((t) => t.dispose());
  }
}

/** What routing made of one size (CPU, from the routed table the GPU wrote). */
interface RouteStats {
  /** Σ over heads and queries of |Ω(i)|: the (query, key) pairs attention must visit. */
  pairs: number;
  sparsity: number;
  /** Σ over heads and video queries of the candidate chunks the router scores (MOC.md §3). */
  candidates: number;
  /** (query, key) pairs design A computes (mandatory keys + its tiles' routed unions), over `pairs`. */
  unionWork: number;
  /** Of the routed pairs, the share 'grouped-shared' walks in its mandatory tiles (chunks every row of a tile routes). */
  sharedRouted: number;
}

function routeStats(table: ChunkTable, routed: Int32Array, g: Geometry, bq: number): RouteStats {
  const { H, topK: W } = g;
  const N = table.n;
  const C = table.start.length;
  const { sparsity } = sparsityOf(routed, W, { H, N, D: g.D }, table, 'moc');
  let candidates = 0;
  for (let a = 0; a < C; a++) {
    let n = 0;
    for (let b = 0; b < C; b++) if (isCandidate(table, a, b, CAUSAL)) n++;
    candidates += n * (table.end[a] - table.start[a]);
  }
  // design A: every row of a tile walks the segment's mandatory keys and the tile's routed union
  const plan = mocPlan(table, bq);
  const seen = new Int32Array(C).fill(-1);
  let work = 0;
  let mandatory = 0;
  let stamp = 0;
  for (let h = 0; h < H; h++) {
    for (let t = 0; t < plan.tiles; t++) {
      const [q0, q1, seg] = plan.data.subarray(4 * t, 4 * t + 4);
      const [, , shot, nkeys] = plan.data.subarray(4 * (plan.segOff + seg), 4 * (plan.segOff + seg) + 4);
      let keys = nkeys;
      mandatory += nkeys * (q1 - q0);
      stamp++;
      for (let x = (h * N + q0) * W; x < (h * N + q1) * W; x++) {
        const c = routed[x];
        if (c < 0 || c >= C || table.kind[c] !== KIND_VIDEO || table.shot[c] === shot || seen[c] === stamp) continue;
        seen[c] = stamp;
        keys += table.end[c] - table.start[c];
      }
      work += keys * (q1 - q0);
    }
  }
  const pairs = (1 - sparsity) * H * N * N;
  return { pairs, sparsity, candidates: candidates * H, unionWork: work / pairs, sharedRouted: pairs > mandatory ? sharedPairs(table, routed, g, bq) / (pairs - mandatory) : 0 };
}

/** Routed pairs in chunks that every row of a 'grouped-shared' tile routes (moc-attention-share.wgsl). */
function sharedPairs(table: ChunkTable, routed: Int32Array, g: Geometry, bq: number): number {
  const plan = mocPlan(table, bq, alignTiles(table, bq));
  const shared = mocSharedChunks(table, plan, routed, g.H, table.n, g.topK);
  let pairs = 0;
  shared.forEach((c, x) => {
    const t = Math.floor(x / g.topK) % plan.tiles;
    if (c >= 0) pairs += (table.end[c] - table.start[c]) * (plan.data[4 * t + 1] - plan.data[4 * t]);
  });
  return pairs;
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

interface CaseTime {
  ms: number | null;
  gpuMs: number | null;
  wallMs: number | null;
  error?: string;
}

interface SizeRow {
  shots: number;
  N: number;
  chunks: number;
  stats: Partial<Record<Regime, RouteStats>>;
  /** By case key, e.g. 'attention union coherent'. */
  times: Record<string, CaseTime>;
  /** Why the size's outputs are wrong, or null. */
  wrong: string | null;
}

const HEAVY_FLOPS = 4e12; // a run this large gets 1 warm-up and at most 5 samples of one run

function optsFor(base: TimingOptions, flops: number): TimingOptions {
  return flops > HEAVY_FLOPS ? { warmup: 1, samples: Math.min(base.samples, 5), minSampleMs: 0, maxInner: 1 } : base;
}

/** Times `fn` unless the filter excludes `name`; never throws. */
async function timeCase(eng: Engine, name: string, fn: () => Promise<unknown>, opts: TimingOptions, log: (s: string) => void): Promise<CaseTime> {
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
      const ad = Math.max(...Array.from({ length: H }, (_, h) => excess(rows(a, h), rows(dense, h), TOL.atol, TOL.rtol)));
      if (ad > 1) return `one shot: MoC and dense disagree on the shot's rows (error/tolerance ${fmt(ad)})`;
    }
  }
  return null;
}

async function benchSize(eng: Engine, g: Geometry, shots: number, args: BenchArgs, base: TimingOptions, log: (s: string) => void): Promise<SizeRow | null> {
  const table = layout(g, shots);
  const N = table.n;
  const { H, D } = g;
  const want = (name: string) => !args.filter || `${name} N=${N}`.includes(args.filter);
  const names = ['dense', 'chunk-mean', 'route', ...MOC_DESIGNS.flatMap((d) => [`total ${d}`, ...REGIMES.map((r) => `attention ${d} ${r}`)])];
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
        runs.push(['chunk-mean', p.mean, 0], ['route', p.route, 0], ['dense', p.dense, 4 * N * N * D * H]);
        for (const d of MOC_DESIGNS) runs.push([`total ${d}`, () => p.total(d), d === 'union' ? visited * stats.unionWork : visited]);
      }
      for (const d of MOC_DESIGNS) runs.push([`attention ${d} ${regime}`, () => p.attend(d), d === 'union' ? visited * stats.unionWork : visited]);
      for (const [name, fn, flops] of runs) {
        if (want(name)) row.times[name] = await timeCase(eng, `${name} N=${N}`, fn, optsFor(base, flops), log);
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

interface TuneRow {
  tile: string;
  design: MocDesign;
  ms: Record<Regime, number | null>;
  wrong: string | null;
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
          if (r.error || e > 1) row.wrong ??= r.error ?? `${regime}: differs from the default (error/tolerance ${fmt(e)})`;
        }
      }
    }
    scratch.dispose();
  } finally {
    p.dispose();
  }
  return rows;
}

interface SdpaRow {
  n: number;
  dtype: 'f32' | 'bf16';
  ms: number | null;
  tflops?: number;
}

/** bench/sdpa.py: from the working directory, or next to the sources or the bundle. */
function sdpaScript(): string | null {
  const here = dirname(fileURLToPath(import.meta.url));
  const candidates = [resolve('bench/sdpa.py'), resolve(here, '../../../bench/sdpa.py'), resolve(here, '../bench/sdpa.py')];
  return candidates.find((c) => existsSync(c)) ?? null;
}

/** Runs PyTorch's dense SDPA for the sizes; its rows, or a one-line reason it could not. */
function runSdpa(Ns: number[], g: Geometry, log: (s: string) => void): { device: string; rows: SdpaRow[] } | string {
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
    return JSON.parse(readFileSync(json, 'utf8')) as { device: string; rows: SdpaRow[] };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const ms = (x: number | null | undefined) => (x === null || x === undefined ? '–' : x >= 100 ? x.toFixed(1) : x >= 1 ? x.toFixed(2) : x.toFixed(3));
const tflops = (flops: number, t: number | null | undefined) => (t ? fmt(flops / t / 1e9) : '–');

/** A markdown table; the columns numbered in `left` left-aligned, the rest right-aligned. */
function table(head: string[], rows: string[][], left: number[] = [0]): string {
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const fmtRow = (r: string[]) => `| ${r.map((c, i) => (left.includes(i) ? c.padEnd(w[i]) : c.padStart(w[i]))).join(' | ')} |`;
  return [fmtRow(head), `|${w.map((n, i) => '-'.repeat(n + 1) + (left.includes(i) ? '-' : ':')).join('|')}|`, ...rows.map(fmtRow)].join('\n');
}

const time = (r: SizeRow, key: string) => r.times[key]?.ms ?? null;

/** The faster design's MoC total of a size (coherent), or null. */
function bestTotal(r: SizeRow): { design: MocDesign; ms: number } | null {
  const ts = MOC_DESIGNS.map((d) => ({ design: d, ms: time(r, `total ${d}`) })).filter((x): x is { design: MocDesign; ms: number } => x.ms !== null);
  return ts.length ? ts.reduce((a, b) => (b.ms < a.ms ? b : a)) : null;
}

/** Per-token time growth between the sizes nearest 16k and 128k tokens, for the given time. */
function growth(rows: SizeRow[], t: (r: SizeRow) => number | null): string {
  if (!rows.length) return '–';
  const near = (n: number) => rows.reduce((a, b) => (Math.abs(Math.log(b.N / n)) < Math.abs(Math.log(a.N / n)) ? b : a));
  const [lo, hi] = [near(16384), near(131072)];
  const [a, b] = [t(lo), t(hi)];
  if (lo === hi || a === null || b === null) return '–';
  return `×${fmt(b / hi.N / (a / lo.N))} (N=${lo.N}→${hi.N})`;
}

/** Smallest N from which MoC stays faster than `other` for every larger size; with a log-log interpolation. */
function crossover(rows: SizeRow[], other: (r: SizeRow) => number | null): string {
  const pts = rows.map((r) => ({ N: r.N, moc: bestTotal(r)?.ms ?? null, o: other(r) })).filter((x) => x.moc !== null && x.o !== null) as Array<{ N: number; moc: number; o: number }>;
  if (!pts.length) return 'no data';
  let i = pts.length;
  while (i > 0 && pts[i - 1].moc < pts[i - 1].o) i--;
  if (i === pts.length) return `not within N ≤ ${pts[pts.length - 1].N}`;
  if (i === 0) return `at every size measured (from N=${pts[0].N})`;
  const [a, b] = [pts[i - 1], pts[i]];
  // log(moc/o) is ~linear in log N between the two sizes: where it crosses 0
  const [ra, rb] = [Math.log(a.moc / a.o), Math.log(b.moc / b.o)];
  const at = Math.exp(Math.log(a.N) + ((Math.log(b.N) - Math.log(a.N)) * ra) / (ra - rb));
  return `from N=${b.N} (log-log interpolated crossover ≈ ${Math.round(at)})`;
}

/** Short names of the designs in the tables. */
const SHORT: Record<MocDesign, string> = { union: 'A', grouped: 'B', 'grouped-direct': 'Bd', 'grouped-shared': 'Bs' };
const LEGEND = `designs: ${MOC_DESIGNS.map((d) => `${SHORT[d]} = ${d}`).join(', ')}`;

/** Geometric mean of a/b attention time over the sizes with both (≥ 16k tokens when there are such). */
function designRatio(rows: SizeRow[], regime: Regime, a: MocDesign, b: MocDesign): { ratio: number; sizes: number } | null {
  const big = rows.filter((r) => r.N >= 16000);
  const use = (big.length ? big : rows).filter((r) => time(r, `attention ${a} ${regime}`) && time(r, `attention ${b} ${regime}`) && !r.wrong);
  if (!use.length) return null;
  const logs = use.map((r) => Math.log(time(r, `attention ${a} ${regime}`)! / time(r, `attention ${b} ${regime}`)!));
  return { ratio: Math.exp(logs.reduce((x, y) => x + y, 0) / logs.length), sizes: use.length };
}

/** Design A against B, and each variant of B against B, per routing regime. */
function verdict(rows: SizeRow[]): string[] {
  const pairs: Array<[MocDesign, MocDesign]> = [['union', 'grouped'], ...MOC_DESIGNS.filter((d) => d.startsWith('grouped-')).map((d): [MocDesign, MocDesign] => ['grouped', d])];
  return pairs.flatMap(([a, b]) =>
    REGIMES.map((regime) => {
      const r = designRatio(rows, regime, a, b);
      if (!r) return `design, ${regime} routing, ${a} vs ${b}: no data`;
      const [fast, slow, x] = r.ratio <= 1 ? [a, b, 1 / r.ratio] : [b, a, r.ratio];
      return `design, ${regime} routing: ${fast} (${SHORT[fast]}) is ${fmt(x)}× as fast as ${slow} (${SHORT[slow]}) (sparse attention, geometric mean over ${r.sizes} size${r.sizes > 1 ? 's' : ''})`;
    }),
  );
}

/** The issue's goal: visited-pair throughput of sparse attention ≥ 70 % of dense's, here for N ≥ 32k (all sizes when none is). */
const GOAL = 0.7;

function throughputTable(rows: SizeRow[], D: number, H: number): string[] {
  const dense = (r: SizeRow) => {
    const t = time(r, 'dense');
    return t ? (4 * r.N * r.N * D * H) / t : null;
  };
  const rate = (r: SizeRow, d: MocDesign, regime: Regime) => {
    const t = time(r, `attention ${d} ${regime}`);
    const s = r.stats[regime];
    return t && s ? (4 * D * s.pairs) / t : null;
  };
  const cell = (r: SizeRow, d: MocDesign) => {
    const [c, dn] = [rate(r, d, 'coherent'), dense(r)];
    if (c === null || dn === null) return '–';
    const pc = (x: number | null) => (x === null ? '–' : `${Math.round((100 * x) / dn)}%`);
    return `${fmt(c / 1e9)} ${pc(c)} / ${pc(rate(r, d, 'mixed'))} / ${pc(rate(r, d, 'random'))}`;
  };
  const body = rows.map((r) => [String(r.N), dense(r) ? fmt(dense(r)! / 1e9) : '–', ...MOC_DESIGNS.map((d) => cell(r, d))]);
  const big = rows.filter((r) => r.N >= 32000 && !r.wrong);
  const use = big.length ? big : rows.filter((r) => !r.wrong);
  const worst = MOC_DESIGNS.map((d) => {
    const fr = use.map((r) => (dense(r) && rate(r, d, 'coherent') ? rate(r, d, 'coherent')! / dense(r)! : null));
    return { d, min: fr.every((x) => x !== null) && fr.length ? Math.min(...(fr as number[])) : null };
  }).filter((x): x is { d: MocDesign; min: number } => x.min !== null);
  const best = worst.length ? worst.reduce((a, b) => (b.min > a.min ? b : a)) : null;
  return [
    '\n## sparse attention: visited-pair throughput against dense flash attention (4·D FLOPs per visited pair)',
    'cells: TFLOP/s with coherent routing, then % of dense with coherent / mixed / random routing',
    table(['N', 'dense TFLOP/s', ...MOC_DESIGNS.map((d) => `${SHORT[d]} (${d})`)], body),
    best
      ? `goal ≥ ${100 * GOAL}% of dense (coherent, N=${use.map((r) => r.N).join(', ')}): best ${best.d} at ≥ ${Math.round(100 * best.min)}% — ${best.min >= GOAL ? 'met' : 'not met'}`
      : 'goal: no data',
  ];
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
  log(`# bench attention${args.quick ? ' --quick' : ''}${args.tune ? ' --tune' : ''}${args.sdpa ? ' --sdpa' : ''}${args.filter ? ` --filter ${args.filter}` : ''}`);
  log(`adapter: ${eng.describe()}`);
  log(`timer: ${eng.features.timestamp ? 'GPU timestamps per compute pass' : 'wall clock around sync() (no timestamp-query)'}, median over samples`);
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

  const sdpa = args.sdpa && rows.length ? runSdpa(rows.map((r) => r.N), g, log) : null;
  const sdpaMs = (r: SizeRow, dtype: SdpaRow['dtype']) => (sdpa && typeof sdpa !== 'string' ? (sdpa.rows.find((x) => x.n === r.N && x.dtype === dtype)?.ms ?? null) : null);

  if (args.json) {
    const doc = { suite: 'attention', quick: args.quick, date: new Date().toISOString(), adapter: eng.adapter, features: eng.features, timing: base, geometry: g, reference: gate, rows, tune: tuneRows, sdpa };
    writeFileSync(args.json, `${JSON.stringify(doc, null, 2)}\n`);
    log(`wrote ${args.json}`);
  }

  const { H, D } = g;
  if (tuneRows.length) {
    log(`\n## attention tiles (${g.tuneShots} shots), ms`);
    const tuneTable = tuneRows.map((r) => [r.tile, r.design, ...REGIMES.map((x) => ms(r.ms[x])), r.wrong ?? '']);
    log(table(['tile', 'design', ...REGIMES, 'note'], tuneTable, [0, 1, REGIMES.length + 2]));
  }
  log('\n## phases, coherent routing unless named; TFLOP/s count 4·D per visited pair, routing 2·D per candidate chunk');
  log(LEGEND);
  const both = (f: (d: MocDesign) => string) => MOC_DESIGNS.map(f).join(' / ');
  const names = MOC_DESIGNS.map((d) => SHORT[d]).join(' / ');
  const detail = rows.map((r) => {
    const s = r.stats.coherent;
    return [
      String(r.N),
      s ? fmt(s.pairs / (H * r.N)) : '–',
      REGIMES.map((x) => fmt(r.stats[x]?.unionWork ?? null)).join(' / '),
      REGIMES.map((x) => (r.stats[x] ? `${Math.round(100 * r.stats[x].sharedRouted)}%` : '–')).join(' / '),
      ms(time(r, 'chunk-mean')),
      `${ms(time(r, 'route'))} / ${s?.candidates && time(r, 'route') ? fmtFlops((2 * D * s.candidates) / time(r, 'route')! / 1e6) : '–'}`,
      ...REGIMES.map((x) => both((d) => ms(time(r, `attention ${d} ${x}`)))),
      both((d) => tflops(4 * D * (s?.pairs ?? 0), time(r, `attention ${d} coherent`))),
      both((d) => ms(time(r, `total ${d}`))),
    ];
  });
  const regimeHead = REGIMES.map((x) => `${x} ${names} ms`);
  log(table(['N', 'keys/query', 'A work (coh / mix / rnd)', 'Bs shared (coh / mix / rnd)', 'mean ms', 'route ms / rate', ...regimeHead, `coherent ${names} TFLOP/s`, `total ${names} ms`], detail));
  for (const l of throughputTable(rows, D, H)) log(l);

  const lines = [
    `per-token time growth 16k→128k: MoC ${growth(rows, (r) => bestTotal(r)?.ms ?? null)}, dense ${growth(rows, (r) => time(r, 'dense'))}`,
    ...verdict(rows),
  ];
  if (sdpa) {
    if (typeof sdpa === 'string') lines.push(`PyTorch: ${sdpa}`);
    else {
      lines.push(`PyTorch (${sdpa.device}): MoC beats dense SDPA f32 ${crossover(rows, (r) => sdpaMs(r, 'f32'))}; bf16 ${crossover(rows, (r) => sdpaMs(r, 'bf16'))}`);
    }
  }
  const failed = !gate.ok || rows.some((r) => r.wrong || Object.values(r.times).some((t) => t.error)) || tuneRows.some((r) => r.wrong && !r.wrong.startsWith('skipped'));
  log(`\n## attention: ${eng.describe()}`);
  for (const l of lines) log(l);
  log(`ms = median ${eng.features.timestamp ? 'GPU' : 'wall'} time per call; MoC = chunk means + routing + sparse attention; ${((performance.now() - started) / 1000).toFixed(1)} s in all${failed ? '; SOME CHECKS FAILED' : ''}`);
  log(LEGEND);
  const head = ['N', 'shots', 'sparsity', 'dense ms', 'dense TFLOP/s', ...MOC_DESIGNS.map((d) => `MoC ${SHORT[d]} ms`), 'speed-up', 'µs/token', 'eff. TFLOP/s', ...(sdpa ? ['torch f32 ms', 'torch bf16 ms'] : []), 'check'];
  const summary = rows.map((r) => {
    const best = bestTotal(r);
    const s = r.stats.coherent;
    const dense = time(r, 'dense');
    return [
      String(r.N),
      String(r.shots),
      s ? `${(100 * s.sparsity).toFixed(1)}%` : '–',
      ms(dense),
      tflops(4 * r.N * r.N * D * H, dense),
      ...MOC_DESIGNS.map((d) => ms(time(r, `total ${d}`))),
      best && dense ? `${fmt(dense / best.ms)}× ${SHORT[best.design]}` : '–',
      best ? fmt((1000 * best.ms) / r.N) : '–',
      best && s ? tflops(4 * D * s.pairs, best.ms) : '–',
      ...(sdpa ? [ms(sdpaMs(r, 'f32')), ms(sdpaMs(r, 'bf16'))] : []),
      r.wrong ? 'WRONG' : 'ok',
    ];
  });
  log(table(head, summary, [0, head.length - 1]));
  return failed ? 1 : 0;
}
