/**
 * The closing report of `bench attention`: the records the measuring loop fills in, and what is
 * printed from them once every size has run.
 *
 * Printed as markdown tables: the tile sweep (--tune), the phases per size (routing, each design's
 * sparse attention per regime, totals), visited-pair throughput of each design against dense with
 * the ≥ 70 % goal, then the verdicts (per-token growth, which design is faster per regime, where
 * MoC overtakes PyTorch's dense SDPA) and a one-table summary per size. --json writes the same
 * records as one JSON document. Times are read by case key ('dense', 'route', 'total union',
 * 'attention grouped mixed', …); a case that was filtered out or failed shows as '–'.
 */
import type { Engine } from '../../engine/engine.ts';
import { MOC_DESIGNS, type MocDesign } from '../../engine/kernels/moc-attention.ts';
import { REGIMES, type Geometry, type Regime, type RouteStats } from './attention-layouts.ts';
import { fmt, fmtFlops, type TimingOptions } from './harness.ts';
/** One case of one size: its median time (GPU when the adapter has timestamps, else wall), or why it failed. */
export interface CaseTime {
  ms: number | null;
  gpuMs: number | null;
  wallMs: number | null;
  error?: string;
}

export interface SizeRow {
  shots: number;
  N: number;
  chunks: number;
  stats: Partial<Record<Regime, RouteStats>>;
  /** By case key, e.g. 'attention union coherent'. */
  times: Record<string, CaseTime>;
  /** Why the size's outputs are wrong, or null. */
  wrong: string | null;
}

/** One tile of one design in the --tune sweep: its time per regime, or why it was skipped or wrong. */
export interface TuneRow {
  tile: string;
  design: MocDesign;
  ms: Record<Regime, number | null>;
  wrong: string | null;
}

/** One row of bench/sdpa.py's JSON: PyTorch dense SDPA at one size and dtype. */
export interface SdpaRow {
  n: number;
  dtype: 'f32' | 'bf16';
  ms: number | null;
  tflops?: number;
}

/** What bench/sdpa.py reports: the device it ran on and its rows. */
export interface SdpaResult {
  device: string;
  rows: SdpaRow[];
}

const ms = (x: number | null | undefined) =>
  x === null || x === undefined ? '–' : x >= 100 ? x.toFixed(1) : x >= 1 ? x.toFixed(2) : x.toFixed(3);
const tflops = (flops: number, t: number | null | undefined) => (t ? fmt(flops / t / 1e9) : '–');

/** A markdown table; the columns numbered in `left` left-aligned, the rest right-aligned. */
function table(head: string[], rows: string[][], left: number[] = [0]): string {
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const fmtRow = (r: string[]) =>
    `| ${r.map((c, i) => (left.includes(i) ? c.padEnd(w[i]) : c.padStart(w[i]))).join(' | ')} |`;
  return [
    fmtRow(head),
    `|${w.map((n, i) => '-'.repeat(n + 1) + (left.includes(i) ? '-' : ':')).join('|')}|`,
    ...rows.map(fmtRow),
  ].join('\n');
}

const time = (r: SizeRow, key: string) => r.times[key]?.ms ?? null;

/** The faster design's MoC total of a size (coherent), or null. */
function bestTotal(r: SizeRow): { design: MocDesign; ms: number } | null {
  const ts = MOC_DESIGNS.map((d) => ({ design: d, ms: time(r, `total ${d}`) })).filter(
    (x): x is { design: MocDesign; ms: number } => x.ms !== null,
  );
  return ts.length ? ts.reduce((a, b) => (b.ms < a.ms ? b : a)) : null;
}

/** Per-token time growth between the sizes nearest 16k and 128k tokens, for the given time. */
function growth(rows: SizeRow[], t: (r: SizeRow) => number | null): string {
  if (!rows.length) return '–';
  const near = (n: number) =>
    rows.reduce((a, b) => (Math.abs(Math.log(b.N / n)) < Math.abs(Math.log(a.N / n)) ? b : a));
  const [lo, hi] = [near(16384), near(131072)];
  const [a, b] = [t(lo), t(hi)];
  if (lo === hi || a === null || b === null) return '–';
  return `×${fmt(b / hi.N / (a / lo.N))} (N=${lo.N}→${hi.N})`;
}

/** Smallest N from which MoC stays faster than `other` for every larger size; with a log-log interpolation. */
function crossover(rows: SizeRow[], other: (r: SizeRow) => number | null): string {
  const pts = rows
    .map((r) => ({ N: r.N, moc: bestTotal(r)?.ms ?? null, o: other(r) }))
    .filter((x) => x.moc !== null && x.o !== null) as Array<{ N: number; moc: number; o: number }>;
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
function designRatio(
  rows: SizeRow[],
  regime: Regime,
  a: MocDesign,
  b: MocDesign,
): { ratio: number; sizes: number } | null {
  const big = rows.filter((r) => r.N >= 16000);
  const use = (big.length ? big : rows).filter(
    (r) => time(r, `attention ${a} ${regime}`) && time(r, `attention ${b} ${regime}`) && !r.wrong,
  );
  if (!use.length) return null;
  const logs = use.map((r) => Math.log(time(r, `attention ${a} ${regime}`)! / time(r, `attention ${b} ${regime}`)!));
  return { ratio: Math.exp(logs.reduce((x, y) => x + y, 0) / logs.length), sizes: use.length };
}

/** Design A against B, and each variant of B against B, per routing regime. */
function verdict(rows: SizeRow[]): string[] {
  const pairs: Array<[MocDesign, MocDesign]> = [
    ['union', 'grouped'],
    ...MOC_DESIGNS.filter((d) => d.startsWith('grouped-')).map((d): [MocDesign, MocDesign] => ['grouped', d]),
  ];
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
  const body = rows.map((r) => [
    String(r.N),
    dense(r) ? fmt(dense(r)! / 1e9) : '–',
    ...MOC_DESIGNS.map((d) => cell(r, d)),
  ]);
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

/** Everything one run of the suite produced, as --json writes it. */
export interface AttentionRun {
  quick: boolean;
  adapter: Engine['adapter'];
  features: Engine['features'];
  timing: TimingOptions;
  geometry: Geometry;
  /** The reference check made before timing. */
  reference: { line: string; ok: boolean };
  rows: SizeRow[];
  tune: TuneRow[];
  /** PyTorch's dense SDPA (--sdpa): its result, why it could not run, or null when not asked. */
  sdpa: SdpaResult | string | null;
}

/** The --json document: the run, dated now, as indented JSON. */
export function jsonDocument(run: AttentionRun): string {
  const { quick, adapter, features, timing, geometry, reference, rows, tune, sdpa } = run;
  const doc = {
    suite: 'attention',
    quick,
    date: new Date().toISOString(),
    adapter,
    features,
    timing,
    geometry,
    reference,
    rows,
    tune,
    sdpa,
  };
  return `${JSON.stringify(doc, null, 2)}\n`;
}

/**
 * Prints the closing tables and verdicts of a run. `describe` is the adapter in words, `started`
 * the performance.now() the suite began at (for the total time), `failed` whether any check failed.
 */
export function report(
  run: AttentionRun,
  describe: string,
  started: number,
  failed: boolean,
  log: (s: string) => void,
): void {
  const { geometry: g, rows, tune: tuneRows, sdpa } = run;
  const sdpaMs = (r: SizeRow, dtype: SdpaRow['dtype']) =>
    sdpa && typeof sdpa !== 'string' ? (sdpa.rows.find((x) => x.n === r.N && x.dtype === dtype)?.ms ?? null) : null;
  const { H, D } = g;
  if (tuneRows.length) {
    log(`\n## attention tiles (${g.tuneShots} shots), ms`);
    const tuneTable = tuneRows.map((r) => [r.tile, r.design, ...REGIMES.map((x) => ms(r.ms[x])), r.wrong ?? '']);
    log(table(['tile', 'design', ...REGIMES, 'note'], tuneTable, [0, 1, REGIMES.length + 2]));
  }
  log(
    '\n## phases, coherent routing unless named; TFLOP/s count 4·D per visited pair, routing 2·D per candidate chunk',
  );
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
  log(
    table(
      [
        'N',
        'keys/query',
        'A work (coh / mix / rnd)',
        'Bs shared (coh / mix / rnd)',
        'mean ms',
        'route ms / rate',
        ...regimeHead,
        `coherent ${names} TFLOP/s`,
        `total ${names} ms`,
      ],
      detail,
    ),
  );
  for (const l of throughputTable(rows, D, H)) log(l);

  const lines = [
    `per-token time growth 16k→128k: MoC ${growth(rows, (r) => bestTotal(r)?.ms ?? null)}, dense ${growth(rows, (r) => time(r, 'dense'))}`,
    ...verdict(rows),
  ];
  if (sdpa) {
    if (typeof sdpa === 'string') lines.push(`PyTorch: ${sdpa}`);
    else {
      lines.push(
        `PyTorch (${sdpa.device}): MoC beats dense SDPA f32 ${crossover(rows, (r) => sdpaMs(r, 'f32'))}; bf16 ${crossover(rows, (r) => sdpaMs(r, 'bf16'))}`,
      );
    }
  }
  log(`\n## attention: ${describe}`);
  for (const l of lines) log(l);
  log(
    `ms = median ${run.features.timestamp ? 'GPU' : 'wall'} time per call; MoC = chunk means + routing + sparse attention; ${((performance.now() - started) / 1000).toFixed(1)} s in all${failed ? '; SOME CHECKS FAILED' : ''}`,
  );
  log(LEGEND);
  const head = [
    'N',
    'shots',
    'sparsity',
    'dense ms',
    'dense TFLOP/s',
    ...MOC_DESIGNS.map((d) => `MoC ${SHORT[d]} ms`),
    'speed-up',
    'µs/token',
    'eff. TFLOP/s',
    ...(sdpa ? ['torch f32 ms', 'torch bf16 ms'] : []),
    'check',
  ];
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
}
