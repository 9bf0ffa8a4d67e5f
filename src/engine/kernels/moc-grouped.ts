/**
 * Design B of the fused MoC attention (MOC.md §5), host side: the grouped kernel and its
 * variants 'grouped', 'grouped-direct' and 'grouped-shared'. mocAttention (moc-attention.ts)
 * validates a call, picks the design and tile, builds the plan (moc-plan.ts) and hands B's calls
 * to groupedAttention here.
 *
 * What lives here is what design A does not need:
 * - the tiling choice: alignTiles says whether 'grouped-shared' cuts query tiles at chunk
 *   boundaries, so that a tile holds one frame's queries;
 * - the shared chunks: mocSharedChunks is the CPU statement of what the share pass
 *   (moc-attention-share.wgsl) finds, the routed chunks every row of a mandatory tile routes;
 *   readSharedChunks lets tests read the GPU's answer back;
 * - the sizing of the grouping: the routed entries are counted, scanned and scattered per
 *   (head, chunk) into a word buffer whose regions (cursors, offsets, tile offsets, the query
 *   list, the routed-tile table, the shared chunks) are laid out here, with an upper bound on
 *   the number of routed tiles so the attention dispatch can be sized before the GPU counts;
 * - the partial buffers: every routed slot of every query may write a normalised partial row
 *   (D floats) and its log-sum-exp, which the merge pass folds into `out`. These scratch
 *   buffers are kept per engine and only ever grow.
 */
import groupedSource from '../../../shaders/moc-attention-grouped.wgsl?raw';
import groupSource from '../../../shaders/moc-group.wgsl?raw';
import shareSource from '../../../shaders/moc-attention-share.wgsl?raw';
import { grid2d, packParams, type Engine } from '../engine.ts';
import type { Constants } from '../pipelines.ts';
import { wgsl, type StorageType } from '../shaders.ts';
import type { Tensor } from '../tensor.ts';
import { attentionSource, type FlashTile } from './flash-attention.ts';
import { KIND_VIDEO, type MocChunks, type MocPlan } from './moc-plan.ts';

/** Design B and its two tuning variants (see moc-attention.ts for how they differ). */
export type GroupedDesign = 'grouped' | 'grouped-direct' | 'grouped-shared';

/** The grouped kernel's VARIANT constant per design B flavour (moc-attention-grouped.wgsl). */
const VARIANTS: Record<GroupedDesign, number> = { grouped: 0, 'grouped-direct': 1, 'grouped-shared': 2 };

/**
 * Whether 'grouped-shared' aligns its query tiles to chunks (mocPlan's `align`): when that adds at
 * most 1/16 more tiles than tiling whole segments (frames of 256 tokens at bq 64: none). Aligned
 * tiles hold the queries of one frame, which mostly route the same chunks.
 */
export function alignTiles(chunks: MocChunks, bq: number): boolean {
  const C = chunks.start.length;
  let aligned = 0;
  let segment = 0;
  for (let c0 = 0; c0 < C;) {
    let c1 = c0 + 1;
    while (c1 < C && chunks.shot[c1] === chunks.shot[c0]) c1++;
    segment += Math.ceil((chunks.end[c1 - 1] - chunks.start[c0]) / bq);
    for (let c = c0; c < c1; c++) aligned += Math.ceil((chunks.end[c] - chunks.start[c]) / bq);
    c0 = c1;
  }
  return aligned * 16 <= segment * 17;
}

/**
 * CPU twin of moc-attention-share.wgsl: for each mandatory tile (head h, plan tile t: row
 * h·T + t) the routed chunks that every row of the tile routes and that count (in range, video,
 * of another shot than the tile), in row 0's slot order, −1 padded to W.
 */
export function mocSharedChunks(
  chunks: MocChunks,
  plan: MocPlan,
  routed: ArrayLike<number>,
  H: number,
  N: number,
  W: number,
): Int32Array {
  const C = chunks.start.length;
  const out = new Int32Array(H * plan.tiles * W).fill(-1);
  const at = (h: number, i: number, j: number) => routed[(h * N + i) * W + j];
  for (let h = 0; h < H; h++) {
    for (let t = 0; t < plan.tiles; t++) {
      const [q0, q1, seg] = plan.data.subarray(4 * t, 4 * t + 3);
      const shot = plan.data[4 * (plan.segOff + seg) + 2];
      let n = 0;
      for (let j = 0; j < W; j++) {
        const c = at(h, q0, j);
        if (c < 0 || c >= C || chunks.kind[c] !== KIND_VIDEO || chunks.shot[c] === shot) continue;
        let ok = true;
        for (let f = 0; f < j && ok; f++) ok = at(h, q0, f) !== c;
        for (let i = q0 + 1; i < q1 && ok; i++) {
          let found = false;
          for (let f = 0; f < W && !found; f++) found = at(h, i, f) === c;
          ok = found;
        }
        if (ok) out[(h * plan.tiles + t) * W + n++] = c;
      }
    }
  }
  return out;
}

/** A call mocAttention has checked and planned, for design B to run. */
export interface GroupedCall {
  design: GroupedDesign;
  q: Tensor;
  k: Tensor;
  v: Tensor;
  out: Tensor;
  /** i32 [H, N, W]; may be null only when W = 0. */
  routed: Tensor | null;
  H: number;
  N: number;
  D: number;
  W: number;
  /** Chunks in the table. */
  C: number;
  tile: FlashTile;
  plan: MocPlan;
  /** The plan on the GPU. */
  planBuffer: GPUBuffer;
  /** The params both attention kernels start with, for a dispatch of `groups` workgroups. */
  head: (groups: number) => Array<['u32' | 'f32', number]>;
  /** The tile's pipeline constants both attention kernels take. */
  constants: Constants;
  storage: StorageType;
}

/**
 * Records design B: without routed slots only the mandatory tiles (their normalised output is the
 * result); otherwise group the routed entries by (head, chunk), attend (mandatory tiles, then
 * routed tiles, writing partials), merge the partials into `out`. 'grouped-shared' first takes
 * the chunks every row of a mandatory tile routes out of the table the grouping reads.
 */
export async function groupedAttention(eng: Engine, call: GroupedCall): Promise<void> {
  const { q, k, v, out, routed, H, N, D, W, C, tile, plan, planBuffer: buffer, head, constants, storage } = call;
  const variant = VARIANTS[call.design];
  const shared = call.design === 'grouped-shared' && W > 0;
  const maxG = eng.adapter.limits.maxComputeWorkgroupsPerDimension;
  const mandGroups = H * plan.tiles;
  const HC = H * C;
  const entries = H * N * W;
  // routed tiles: Σ ceil(count / bq) over (head, chunk) ≤ entries / bq + the non-empty (head, chunk)
  const maxTiles = W > 0 ? Math.ceil(entries / tile.bq) + Math.min(HC, entries) : 0;
  // grp: cursors, offs, toffs, list; then (variants) the tile table and the shared chunks
  const listOff = 3 * HC + 2;
  const tileOff = listOff + entries;
  const shrOff = tileOff + (variant > 0 ? maxTiles : 0);
  const grpWords = shrOff + (shared ? mandGroups * W : 0);
  const scratch = scratchFor(eng, {
    grp: 4 * grpWords,
    plse: 4 * H * N * (W + 1),
    po: 4 * H * N * W * D,
    rf: shared ? 4 * entries : 0,
  });
  const attend = await eng.pipeline(
    'moc-attention-grouped',
    attentionSource(groupedSource, storage),
    { ...constants, VARIANT: variant },
    storage,
  );
  const attendParams = (groups: number) =>
    packParams([
      ...head(groups),
      ['u32', mandGroups],
      ['u32', W],
      ['u32', HC],
      ['u32', listOff],
      ['u32', plan.splitOff],
      ['u32', tileOff],
      ['u32', shrOff],
      ['u32', 0],
    ]);
  const attendBindings = [q, k, v, out, buffer, scratch.grp, scratch.po, scratch.plse];
  if (W === 0) {
    // a variant with nothing routed: the mandatory tiles' normalised output is the result
    eng.dispatch({
      pipeline: attend,
      label: 'moc-attention-grouped',
      params: attendParams(mandGroups),
      bindings: attendBindings,
      groups: grid2d(mandGroups, maxG),
    });
    return;
  }
  const by64 = (n: number) => grid2d(Math.ceil(n / 64), maxG);
  if (shared) {
    const share = await eng.pipeline(
      'moc-attention-share',
      wgsl(shareSource, storage),
      { RW: W, BQ: tile.bq },
      storage,
    );
    const shareParams = packParams([
      ['u32', N],
      ['u32', plan.tiles],
      ['u32', plan.segOff],
      ['u32', plan.chunkOff],
      ['u32', C],
      ['u32', shrOff],
      ['u32', mandGroups],
    ]);
    eng.dispatch({
      pipeline: share,
      label: 'moc-attention-share',
      params: shareParams,
      bindings: [routed!, buffer, scratch.grp, scratch.rf],
      groups: grid2d(mandGroups, maxG),
    });
    lastShared.set(eng, { offset: 4 * shrOff, words: mandGroups * W, buffer: scratch.grp });
  }
  const groupCode = wgsl(groupSource, storage);
  const stage = (s: number) =>
    eng.pipeline('moc-group', groupCode, { STAGE: s, TILES: s === 2 && variant > 0 ? 1 : 0 }, storage);
  const [zero, count, scan, scatter, merge] = await Promise.all([0, 1, 2, 3, 4].map(stage));
  const groupParams = packParams([
    ['u32', N],
    ['u32', W],
    ['u32', C],
    ['u32', plan.chunkOff],
    ['u32', HC],
    ['u32', tile.bq],
    ['u32', entries],
    ['u32', H * N],
    ['u32', D / 4],
    ['u32', tileOff],
  ]);
  const groupBindings = [shared ? scratch.rf : routed!, buffer, scratch.grp, scratch.plse, scratch.po, out];
  eng.dispatch({
    pipeline: zero,
    label: 'moc-group.zero',
    params: groupParams,
    bindings: groupBindings,
    groups: by64(HC),
  });
  eng.dispatch({
    pipeline: count,
    label: 'moc-group.count',
    params: groupParams,
    bindings: groupBindings,
    groups: by64(entries),
  });
  eng.dispatch({ pipeline: scan, label: 'moc-group.scan', params: groupParams, bindings: groupBindings, groups: [1] });
  eng.dispatch({
    pipeline: scatter,
    label: 'moc-group.scatter',
    params: groupParams,
    bindings: groupBindings,
    groups: by64(entries),
  });
  const groups = mandGroups + maxTiles;
  eng.dispatch({
    pipeline: attend,
    label: 'moc-attention-grouped',
    params: attendParams(groups),
    bindings: attendBindings,
    groups: grid2d(groups, maxG),
  });
  eng.dispatch({
    pipeline: merge,
    label: 'moc-group.merge',
    params: groupParams,
    bindings: groupBindings,
    groups: by64((H * N * D) / 4),
  });
}

interface Scratch {
  grp: GPUBuffer;
  plse: GPUBuffer;
  po: GPUBuffer;
  /** 'grouped-shared': the routed table without the shared chunks' entries. */
  rf: GPUBuffer;
}

// Design B's scratch buffers, one set per engine, reused while they are large enough. Every call
// rewrites what it reads before reading it, so calls recorded back to back may share them.
// A set replaced by larger sizes (each the larger of the old and the new need, so designs with
// different needs do not take turns replacing it) is destroyed after the work recorded so far
// is submitted.
const scratchCache = new WeakMap<Engine, { bytes: Record<keyof Scratch, number>; bufs: Scratch }>();

function scratchFor(eng: Engine, need: Record<keyof Scratch, number>): Scratch {
  const hit = scratchCache.get(eng);
  const names = Object.keys(need) as Array<keyof Scratch>;
  if (hit && names.every((n) => hit.bytes[n] >= need[n])) return hit.bufs;
  const bytes = { ...need };
  for (const n of names) {
    if (hit) bytes[n] = Math.max(bytes[n], hit.bytes[n]);
    eng.checkBinding(bytes[n], `moc-attention.${n}`);
  }
  if (hit) {
    eng.flush();
    Object.values(hit.bufs).forEach((b: GPUBuffer) => b.destroy());
    lastShared.delete(eng);
  }
  const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC; // COPY_SRC: readSharedChunks
  const make = (name: keyof Scratch) =>
    eng.device.createBuffer({
      size: Math.max(16, Math.ceil(bytes[name] / 16) * 16),
      usage,
      label: `moc-attention.${name}`,
    });
  const bufs = { grp: make('grp'), plse: make('plse'), po: make('po'), rf: make('rf') };
  scratchCache.set(eng, { bytes, bufs });
  return bufs;
}

// Where the last 'grouped-shared' call on an engine left its shared-chunk table (for tests).
const lastShared = new WeakMap<Engine, { offset: number; words: number; buffer: GPUBuffer }>();

/**
 * Tests: the shared-chunk table (mocSharedChunks' layout) of the last 'grouped-shared' call on
 * this engine with routed slots, as the GPU wrote it; null if there was none.
 */
export async function readSharedChunks(eng: Engine): Promise<Int32Array | null> {
  const at = lastShared.get(eng);
  if (!at) return null;
  eng.flush();
  const size = Math.max(4, 4 * at.words);
  const staging = eng.device.createBuffer({
    size,
    usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    label: 'moc-attention.shared.readback',
  });
  const enc = eng.device.createCommandEncoder({ label: 'moc-attention.shared.readback' });
  enc.copyBufferToBuffer(at.buffer, at.offset, staging, 0, size);
  eng.device.queue.submit([enc.finish()]);
  await staging.mapAsync(GPUMapMode.READ);
  const words = new Int32Array(staging.getMappedRange().slice(0), 0, at.words);
  staging.unmap();
  staging.destroy();
  return words;
}
