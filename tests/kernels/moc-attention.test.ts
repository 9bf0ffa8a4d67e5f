import { describe, expect, it } from 'vitest';
import { ShapeError, UnsupportedError } from '../../src/engine/errors.ts';
import { flashAttentionCpu } from '../../src/engine/kernels/flash-attention.ts';
import {
  MOC_DESIGNS,
  alignTiles,
  checkChunks,
  mocAttention,
  mocAttentionCpu,
  mocPlan,
  mocSharedChunks,
  mocTile,
  mocTileProblem,
  readSharedChunks,
  type MocChunks,
  type MocDesign,
} from '../../src/engine/kernels/moc-attention.ts';
import { Rng } from '../../src/engine/random.ts';
import type { FlashTile } from '../../src/engine/kernels/flash-attention.ts';
import { buildChunkTable } from '../../src/model/layout.ts';
import { mocAttentionReference } from '../../src/model/moc-reference.ts';
import { assertClose } from '../helpers/compare.ts';
import { storageTypes, testEngine } from '../helpers/gpu.ts';
import { CASES, randomQkv, singleShotTable } from '../helpers/moc-cases.ts';
import { poisonedAs, readAsF32, roundAs, uploadAs } from '../helpers/storage.ts';

const TOL = { f32: { atol: 2e-5, rtol: 2e-4 }, f16: { atol: 2e-3, rtol: 2e-2 } };

function chunkOfTokens(t: MocChunks, N: number): Int32Array {
  const of = new Int32Array(N);
  for (let c = 0; c < t.start.length; c++) of.fill(c, t.start[c], t.end[c]);
  return of;
}

/**
 * A small router after MOC.md §3 (score q·mean(k), top-k of the candidates, ties to the lower
 * index, −1 padded; text queries route nothing). Only a source of realistic tables for these
 * tests — the contract's reference router lives in src/model.
 */
function route(
  q: Float32Array,
  k: Float32Array,
  H: number,
  N: number,
  D: number,
  t: MocChunks,
  topK: number,
  causal: boolean,
): Int32Array {
  const C = t.start.length;
  const of = chunkOfTokens(t, N);
  const desc = new Float64Array(H * C * D);
  for (let h = 0; h < H; h++) {
    for (let c = 0; c < C; c++) {
      for (let i = t.start[c]; i < t.end[c]; i++)
        for (let d = 0; d < D; d++) desc[(h * C + c) * D + d] += k[(h * N + i) * D + d] / (t.end[c] - t.start[c]);
    }
  }
  const routed = new Int32Array(H * N * topK).fill(-1);
  for (let h = 0; h < H; h++) {
    for (let i = 0; i < N; i++) {
      const a = of[i];
      if (t.kind[a] !== 1) continue;
      const cands: Array<[number, number]> = [];
      for (let b = 0; b < C; b++) {
        if (t.kind[b] !== 1 || t.shot[b] === t.shot[a] || (causal && b >= a)) continue;
        let s = 0;
        for (let d = 0; d < D; d++) s += q[(h * N + i) * D + d] * desc[(h * C + b) * D + d];
        cands.push([b, s]);
      }
      cands.sort((x, y) => y[1] - x[1] || x[0] - y[0]);
      cands.slice(0, topK).forEach(([b], j) => (routed[(h * N + i) * topK + j] = b));
    }
  }
  return routed;
}

/** A table of W random entries per query: chunks anywhere (even mandatory), −1s, duplicates, out of range. */
function messyRouting(rng: Rng, H: number, N: number, C: number, W: number): Int32Array {
  const r = new Int32Array(H * N * W);
  for (let x = 0; x < r.length; x++) {
    const u = rng.next();
    r[x] = u < 0.15 ? -1 : u < 0.2 ? C + rng.int(3) : u < 0.3 && x > 0 ? r[x - 1] : rng.int(C);
  }
  return r;
}

interface Run {
  H: number;
  D: number;
  table: MocChunks;
  routed: Int32Array;
  W: number;
  tile?: FlashTile;
  seed?: number;
  qkv?: { q: Float32Array; k: Float32Array; v: Float32Array };
  /** MOC.md §3b: only captions of shots ≤ the query's are mandatory. */
  causalText?: boolean;
}

/**
 * Runs the kernel designs (MOC.md §5: union, grouped, and grouped's variants; all by default) on
 * the same inputs against the CPU twin. After 'grouped-shared' its shared-chunk table, as the GPU
 * wrote it, must equal the CPU twin's (mocSharedChunks); returns how many tiles shared a chunk. Each (design, D, tile) is a pipeline that takes seconds to compile on
 * SwiftShader, so tests of the shared key-tile loop alone (head dims) run one design.
 */
async function check(tag: string, r: Run, designs: readonly MocDesign[] = MOC_DESIGNS): Promise<number> {
  const eng = await testEngine();
  const N = r.table.end[r.table.end.length - 1];
  let sharing = 0;
  for (const st of storageTypes(eng)) {
    const raw = r.qkv ?? randomQkv(r.seed ?? 7, r.H, N, r.D);
    const [q, k, v] = [raw.q, raw.k, raw.v].map((x) => roundAs(st, x));
    const shape = [r.H, N, r.D];
    const [tq, tk, tv] = [q, k, v].map((x, i) => uploadAs(eng, st, x, shape, `test.${'qkv'[i]}`));
    const tr = eng.upload(r.routed, [r.H, N, r.W], 'test.routed');
    const ref = mocAttentionCpu(q, k, v, r.H, N, r.D, r.table, r.routed, r.W, { causalText: r.causalText });
    for (const design of designs) {
      const out = poisonedAs(eng, st, shape, 'test.out');
      await mocAttention(eng, tq, tk, tv, r.table, tr, { out, tile: r.tile, design, causalText: r.causalText });
      assertClose(
        `moc ${design} ${st} ${tag} (H=${r.H} N=${N} D=${r.D} W=${r.W})`,
        await readAsF32(eng, out),
        ref,
        TOL[st],
      );
      out.dispose();
      if (design === 'grouped-shared' && r.W > 0) sharing = await checkShared(eng, r, N);
    }
    [tq, tk, tv, tr].forEach((t) => t.dispose());
  }
  return sharing;
}

/** The GPU's shared-chunk table of the last 'grouped-shared' run against mocSharedChunks; the tiles (of all heads) sharing a chunk. */
async function checkShared(eng: Awaited<ReturnType<typeof testEngine>>, r: Run, N: number): Promise<number> {
  const bq = (r.tile ?? mocTile(eng, r.D, r.W, 'grouped-shared')).bq;
  const plan = mocPlan(r.table, bq, alignTiles(r.table, bq));
  const want = mocSharedChunks(r.table, plan, r.routed, r.H, N, r.W);
  expect(Array.from((await readSharedChunks(eng))!)).toEqual(Array.from(want));
  let tiles = 0;
  for (let x = 0; x < want.length; x += r.W) if (want[x] >= 0) tiles++;
  return tiles;
}

function routedCase(table: MocChunks, H: number, D: number, topK: number, causal: boolean, seed: number): Run {
  const N = table.end[table.end.length - 1];
  const qkv = randomQkv(seed, H, N, D);
  return { H, D, table, W: topK, routed: route(qkv.q, qkv.k, H, N, D, table, topK, causal), qkv };
}

describe('MoC attention', () => {
  CASES.forEach(({ name, table }, ci) => {
    for (const causal of [true, false]) {
      const topK = 3; // one routed width for all cases: each width is its own pipeline
      it(`${name}: k=${topK}, causal ${causal}`, () => check(name, routedCase(table, 2, 64, topK, causal, 100 + ci)));
    }
  });

  it('k = 0: mandatory chunks only', async () => {
    for (const { name, table } of CASES.slice(0, 5))
      await check(`${name} k=0`, { ...routedCase(table, 2, 64, 0, true, 5), W: 0 });
  });

  // With `causal` the first shot has no candidates and shot 1 of CASES[1] has two chunks before it;
  // CASES[4]'s shots have 2, 1, 3, 2, 2 frames: at most 8 candidates, fewer than 9.
  it('k larger than the candidates', async () => {
    expect(await check('k=3 > candidates', routedCase(CASES[1].table, 2, 64, 3, true, 11))).toBeGreaterThan(0);
    for (const causal of [true, false]) {
      expect(
        await check(`5 shots, k=9 > candidates, causal ${causal}`, routedCase(CASES[4].table, 2, 64, 9, causal, 12)),
      ).toBeGreaterThan(0);
    }
  });

  it('grouped-shared: tiles aligned to frames, rows that share routed chunks and rows that do not', async () => {
    // frames of 32 tokens and 32-query tiles: aligned tiles cost nothing extra (alignTiles)
    const table = buildChunkTable({
      globalCaptionTokens: 4,
      shots: [3, 2, 3].map((frames) => ({ captionTokens: 4, frames })),
      tokensPerFrame: 32,
      chunkFrames: 1,
    });
    const tile = { bq: 32, bk: 32, ncol: 8 };
    expect(alignTiles(table, tile.bq)).toBe(true);
    expect(alignTiles(CASES[4].table, tile.bq)).toBe(false); // frames of 35 tokens: 35-row tiles would cost more
    const N = table.n;
    const run = routedCase(table, 2, 64, 2, true, 81);
    // rows of frame 6 (shot 2) route chunks 2 and 3 (frames of shot 0) in both heads, bar one row
    const frame6 = table.start.findIndex((_, c) => table.kind[c] === 1 && table.shot[c] === 2);
    for (let h = 0; h < 2; h++) {
      for (let i = table.start[frame6]; i < table.end[frame6]; i++)
        run.routed.set(i === table.start[frame6] + 5 && h === 1 ? [3, -1] : [3, 2], (h * N + i) * 2);
    }
    expect(await check('aligned tiles', { ...run, tile }, ['grouped', 'grouped-shared'])).toBeGreaterThan(0);
  });

  it('a messy table: −1 anywhere, duplicates, mandatory and out-of-range entries, routed text queries', async () => {
    const { table } = CASES[3];
    const N = table.n;
    await check('messy', {
      H: 2,
      D: 64,
      table,
      W: 3,
      routed: messyRouting(new Rng(3), 2, N, table.start.length, 3),
      seed: 21,
    });
  });

  // the head dim only changes the shared loop (moc-attention-core.wgsl): design A covers it
  it('head dim 128', () => check('D=128', routedCase(CASES[1].table, 1, 128, 3, true, 32), ['union']));

  it('head dim 32: the 64-query tile (two mask words, several routed batches) and a small tile', async () => {
    const eng = await testEngine();
    for (const [tile, designs] of [
      [{ bq: 64, bk: 32, ncol: 8 }, ['union']], // design A's mask words
      [{ bq: 16, bk: 8, ncol: 4 }, MOC_DESIGNS], // design B: several query tiles per routed chunk
    ] as const) {
      for (const design of designs) expect(mocTileProblem(eng, 32, tile, 3, design)).toBeNull();
      await check(
        `tile ${JSON.stringify(tile)}`,
        { ...routedCase(CASES[4].table, 2, 32, 3, false, 41), tile },
        designs,
      );
    }
  });

  it('a long shot: tiles span chunks, a routed union of many chunks', async () => {
    const table = singleShotTable(20); // every frame its own shot: 20 segments, 19 candidates
    await check('single-shot 20 frames', routedCase(table, 1, 64, 3, false, 51));
  });

  it('dense mode is flash attention over all tokens', async () => {
    const eng = await testEngine();
    const { table } = CASES[2];
    const N = table.n;
    const { q, k, v } = randomQkv(61, 2, N, 64);
    const [tq, tk, tv] = [q, k, v].map((x) => eng.upload(x, [2, N, 64]));
    const out = poisonedAs(eng, 'f32', [2, N, 64]);
    await mocAttention(eng, tq, tk, tv, table, null, { mode: 'dense', out });
    const ref = flashAttentionCpu(q, k, v, 2, N, 64);
    assertClose('dense', await readAsF32(eng, out), ref, TOL.f32);
    assertClose('dense cpu', mocAttentionCpu(q, k, v, 2, N, 64, table, new Int32Array(0), 0, { mode: 'dense' }), ref, {
      atol: 0,
      rtol: 0,
    });
    [tq, tk, tv, out].forEach((t) => t.dispose());
  });

  it('the CPU twin agrees with the model reference (src/model/moc-reference.ts)', () => {
    const { table } = CASES[3];
    const N = table.n;
    const run = routedCase(table, 2, 32, 3, true, 71);
    const messy = messyRouting(new Rng(9), 2, N, table.start.length, 4).map((x) => (x >= table.start.length ? -1 : x));
    for (const [routed, W] of [
      [run.routed, 3],
      [messy, 4],
    ] as const) {
      for (const causalText of [false, true]) {
        const ours = mocAttentionCpu(run.qkv!.q, run.qkv!.k, run.qkv!.v, 2, N, 32, table, routed, W, { causalText });
        const theirs = mocAttentionReference(
          run.qkv!.q,
          run.qkv!.k,
          run.qkv!.v,
          { H: 2, N, D: 32 },
          table,
          routed,
          W,
          'moc',
          causalText,
        );
        assertClose(`cpu twin vs model reference, causal text ${causalText}`, ours, theirs, { atol: 1e-6, rtol: 1e-6 });
      }
    }
  });

  it('queryStart: tiles cover exactly the queries from it on; their rows as without it (every design)', async () => {
    const { table } = CASES[3];
    const N = table.n;
    const q0 = table.start[Math.floor(table.start.length / 2)];
    for (const align of [false, true]) {
      const plan = mocPlan(table, 16, align, true, q0);
      const covered = new Uint8Array(N);
      for (let t = 0; t < plan.tiles; t++) for (let i = plan.data[4 * t]; i < plan.data[4 * t + 1]; i++) covered[i]++;
      expect([...covered]).toEqual(Array.from({ length: N }, (_, i) => Number(i >= q0)));
    }
    const eng = await testEngine();
    const run = routedCase(table, 2, 64, 3, true, 91);
    const routed = run.routed.map((r, j) => (Math.floor(j / 3) % N < q0 ? -1 : r)); // earlier rows unrouted
    const { q, k, v } = run.qkv!;
    const ref = mocAttentionCpu(q, k, v, 2, N, 64, table, routed, 3, { causalText: true });
    const [tq, tk, tv] = [q, k, v].map((x) => eng.upload(x, [2, N, 64], 'test.qkv'));
    const tr = eng.upload(routed, [2, N, 3], 'test.routed');
    for (const design of MOC_DESIGNS) {
      const out = await mocAttention(eng, tq, tk, tv, table, tr, { design, causalText: true, queryStart: q0 });
      const got = (await eng.read(out)) as Float32Array;
      for (let h = 0; h < 2; h++)
        assertClose(
          `${design} head ${h}`,
          got.subarray((h * N + q0) * 64, (h + 1) * N * 64),
          ref.subarray((h * N + q0) * 64, (h + 1) * N * 64),
          TOL.f32,
        );
      out.dispose();
    }
    [tq, tk, tv, tr].forEach((t) => t.dispose());
  });

  it('causal text: every design against the twin, and the twin differs from v1 (later captions unseen)', async () => {
    for (const ci of [2, 3, 4]) {
      const { name, table } = CASES[ci];
      const run = { ...routedCase(table, 2, 64, 3, true, 400 + ci), causalText: true };
      await check(`${name} causal text`, run);
      const N = table.n;
      const { q, k, v } = run.qkv!;
      const a = mocAttentionCpu(q, k, v, 2, N, 64, table, run.routed, run.W, { causalText: true });
      const b = mocAttentionCpu(q, k, v, 2, N, 64, table, run.routed, run.W);
      expect(a.some((x, i) => Math.abs(x - b[i]) > 1e-3)).toBe(true);
    }
  });

  it('plans tiles within segments and merges mandatory ranges', () => {
    const { table } = CASES[1]; // 2 shots, no global caption
    const plan = mocPlan(table, 32);
    const rec = (i: number) => Array.from(plan.data.subarray(4 * i, 4 * i + 4));
    // every tile inside one segment, tiles cover 0..N in order
    let at = 0;
    for (let t = 0; t < plan.tiles; t++) {
      const [q0, q1, seg] = rec(t);
      expect(q0).toBe(at);
      expect(q1 - q0).toBeLessThanOrEqual(32);
      const shot = rec(plan.segOff + seg)[2];
      for (let c = 0; c < table.start.length; c++)
        if (table.start[c] < q1 && table.end[c] > q0) expect(table.shot[c]).toBe(shot);
      at = q1;
    }
    expect(at).toBe(table.n);
    const ranges = (seg: number) => {
      const [r0, nr, , nkeys] = rec(plan.segOff + seg);
      return { nkeys, list: Array.from({ length: nr }, (_, i) => rec(plan.rangeOff + r0 + i).slice(0, 3)) };
    };
    // shot 0: its own chunks and shot 1's caption, which follows them: one merged range
    const capt1 = table.start.findIndex((_, c) => table.kind[c] === 0 && table.shot[c] === 1);
    expect(ranges(0)).toEqual({ nkeys: table.end[capt1], list: [[0, table.end[capt1], 0]] });
    // shot 1: shot 0's caption, then its own caption and frames
    const capt0 = table.start.findIndex((_, c) => table.kind[c] === 0 && table.shot[c] === 0);
    const len0 = table.end[capt0] - table.start[capt0];
    expect(ranges(1)).toEqual({
      nkeys: len0 + table.n - table.start[capt1],
      list: [
        [table.start[capt0], table.end[capt0], 0],
        [table.start[capt1], table.n, len0],
      ],
    });
  });

  it('splits mandatory ranges into the main range and the rest; aligned tiles stay within chunks', () => {
    const { table } = CASES[1]; // 2 shots, no global caption
    const plan = mocPlan(table, 32);
    const rec = (i: number) => Array.from(plan.data.subarray(4 * i, 4 * i + 4));
    const capt = (shot: number) => table.start.findIndex((_, c) => table.kind[c] === 0 && table.shot[c] === shot);
    const [capt0, capt1] = [capt(0), capt(1)];
    const segShot = (seg: number) => rec(plan.segOff + seg)[2];
    for (let seg = 0; seg < 2; seg++) {
      const [main0, main1, rest0, nrest] = rec(plan.splitOff + seg);
      const rest = Array.from({ length: nrest }, (_, i) => rec(plan.rangeOff + rest0 + i).slice(0, 3));
      if (segShot(seg) === 0) {
        // its own chunks and shot 1's caption are one range: no rest
        expect([main0, main1, rest]).toEqual([0, table.end[capt1], []]);
      } else {
        // the main range is its caption and frames; shot 0's caption is the rest, from position 0
        expect([main0, main1, rest]).toEqual([
          table.start[capt1],
          table.n,
          [[table.start[capt0], table.end[capt0], 0]],
        ]);
      }
      expect(main1 - main0 + rest.reduce((n, [s, e]) => n + e - s, 0)).toBe(rec(plan.segOff + seg)[3]);
    }
    for (const { table: t } of CASES) {
      const aligned = mocPlan(t, 16, true);
      let at = 0;
      for (let i = 0; i < aligned.tiles; i++) {
        const [q0, q1] = Array.from(aligned.data.subarray(4 * i, 4 * i + 2));
        expect(q0).toBe(at);
        const c = t.start.findIndex((s, b) => s <= q0 && q0 < t.end[b]);
        expect(q1).toBeLessThanOrEqual(t.end[c]);
        at = q1;
      }
      expect(at).toBe(t.n);
    }
  });

  it('refuses bad chunk tables, routed shapes and head dims', async () => {
    const eng = await testEngine();
    const t = (start: number[], end: number[]): MocChunks => ({
      start: Int32Array.from(start),
      end: Int32Array.from(end),
      shot: new Int32Array(start.length),
      kind: new Int32Array(start.length).fill(1),
    });
    expect(() => checkChunks(t([0, 6], [5, 10]), 10)).toThrow(/starts at 6, expected 5 \(a gap\)/);
    expect(() => checkChunks(t([0, 4], [5, 10]), 10)).toThrow(/an overlap/);
    expect(() => checkChunks(t([0, 5], [5, 12]), 10)).toThrow(/cover tokens 0..12, but N = 10/);
    expect(() => checkChunks({ ...t([0], [10]), kind: Int32Array.of(2) }, 10)).toThrow(/kind 2/);
    const x = eng.tensor([1, 10, 32]);
    const bad = eng.tensor([1, 10, 2], 'f32');
    await expect(mocAttention(eng, x, x, x, t([0, 5], [5, 10]), bad)).rejects.toThrow(ShapeError);
    await expect(mocAttention(eng, x, x, x, t([0, 5], [5, 10]), bad)).rejects.toThrow(/routed must be i32/);
    const r = eng.upload(new Int32Array(10), [1, 10, 1]);
    await expect(mocAttention(eng, x, x, x, t([0, 5], [5, 10]), r, { design: 'mixed' as 'union' })).rejects.toThrow(
      /design 'mixed'/,
    );
    r.dispose();
    const y = eng.tensor([1, 10, 40]);
    await expect(mocAttention(eng, y, y, y, t([0, 5], [5, 10]), null)).rejects.toThrow(UnsupportedError);
    [x, bad, y].forEach((z) => z.dispose());
  });
});
