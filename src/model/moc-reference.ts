/**
 * The plain CPU reference of MoC attention (MOC.md §3), float64 accumulation throughout. It is
 * written from the contract, not from the kernels (routing sorts the candidates instead of the
 * kernels' running insertion list), so each checks the other.
 *
 * Legend: H heads, N tokens, D head dim, C chunks, K routed slots (top_k).
 * Tensors are head-major: q, k, v, out [H, N, D]; desc [H, C, D]; routed [H, N, K].
 * Routing view (MOC.md §3b): routing may score with its own q_route, k_route [H, N, D]; the
 * descriptors are then chunk means of k_route and the scores q_route·φ, while attention still
 * uses q, k, v. Absent, routing uses q and k (the v1 meaning).
 *
 * Definitions chosen here (the contract leaves them open):
 * - Sparsity = 1 − Σ_h Σ_i |Ω_h(i)| / (H·N²), with |Ω_h(i)| the tokens query i of head h attends
 *   to; per head: 1 − Σ_i |Ω_h(i)| / N². Dense mode: 0.
 * - Dense mode routes nothing: `routed` is all -1.
 * - A routed list may hold -1 anywhere (skipped) and, after regularisers, more than K entries;
 *   Ω is the union, so a chunk listed twice or also mandatory counts once.
 */
import { chunkMeanCpu } from '../engine/kernels/chunk-mean.ts';
import { Rng } from '../engine/random.ts';
import { KIND_TEXT, KIND_VIDEO, tokenChunks, type ChunkTable } from './layout.ts';

export type MocMode = 'moc' | 'dense';

export interface MocDims {
  H: number;
  N: number;
  D: number;
}

export interface MocConfig {
  topK: number;
  causal: boolean;
  mode: MocMode;
  /** MOC.md §3b: only captions of shots ≤ the query's are mandatory (default false). */
  causalText?: boolean;
}

/** Routing's own view of the queries and keys, [H, N, D] each (MOC.md §3b). */
export interface RouteView {
  q: ArrayLike<number>;
  k: ArrayLike<number>;
}

export interface MocResult {
  out: Float32Array; // [H, N, D]
  routed: Int32Array; // [H, N, K]
  sparsity: number;
  sparsityPerHead: Float64Array; // [H]
}

/**
 * Chunk b is mandatory for the queries of chunk a: every text chunk, and every chunk of a's shot.
 * With `causalText` (MOC.md §3b) only the text chunks of shots ≤ a's (the global caption, shot
 * −1, then sees itself), so nothing of a later shot reaches a.
 */
export function isMandatory(table: ChunkTable, a: number, b: number, causalText = false): boolean {
  if (table.shot[b] === table.shot[a]) return true;
  return table.kind[b] === KIND_TEXT && (!causalText || table.shot[b] <= table.shot[a]);
}

/** Chunk b is a routing candidate for the queries of chunk a (a text chunk has none; causalText changes only text, so not this). */
export function isCandidate(table: ChunkTable, a: number, b: number, causal: boolean): boolean {
  if (table.kind[a] !== KIND_VIDEO || table.kind[b] !== KIND_VIDEO) return false;
  return !isMandatory(table, a, b) && (!causal || b < a);
}

/** For each chunk a, the mandatory chunks of its queries in increasing order. */
export function mandatoryChunks(table: ChunkTable, causalText = false): Int32Array[] {
  const C = table.start.length;
  const lists: Int32Array[] = [];
  for (let a = 0; a < C; a++) {
    const l: number[] = [];
    for (let b = 0; b < C; b++) if (isMandatory(table, a, b, causalText)) l.push(b);
    lists.push(Int32Array.from(l));
  }
  return lists;
}

/** Key descriptors φ(K_c): chunk means of k, [H, C, D] (float64). */
export function chunkDescriptors(k: ArrayLike<number>, dims: MocDims, table: ChunkTable): Float64Array {
  return chunkMeanCpu(k, dims, table.start, table.end);
}

/**
 * Routed chunks per (head, query) from the contract: candidates sorted by score descending,
 * ties to the lower chunk index, the first min(K, #candidates) kept, the rest -1.
 * @returns routed [H, N, K]; all -1 in dense mode.
 */
export function routeReference(
  q: ArrayLike<number>,
  desc: ArrayLike<number>,
  dims: MocDims,
  table: ChunkTable,
  cfg: MocConfig,
): Int32Array {
  const { H, N, D } = dims;
  const C = table.start.length;
  const K = cfg.topK;
  const routed = new Int32Array(H * N * K).fill(-1);
  if (cfg.mode === 'dense' || K === 0) return routed;
  const chunkOf = tokenChunks(table);
  for (let h = 0; h < H; h++) {
    for (let i = 0; i < N; i++) {
      const a = chunkOf[i];
      const cands: Array<{ b: number; s: number }> = [];
      for (let b = 0; b < C; b++) {
        if (!isCandidate(table, a, b, cfg.causal)) continue;
        let s = 0;
        for (let d = 0; d < D; d++) s += q[(h * N + i) * D + d] * desc[(h * C + b) * D + d];
        cands.push({ b, s });
      }
      cands.sort((x, y) => y.s - x.s || x.b - y.b);
      const m = Math.min(K, cands.length);
      for (let j = 0; j < m; j++) routed[(h * N + i) * K + j] = cands[j].b;
    }
  }
  return routed;
}

/** Calls fn(h, i, chunks of Ω_h(i) as a 0/1 mask over C, token count |Ω_h(i)|) for every query. */
function forEachOmega(
  routed: Int32Array,
  width: number,
  dims: MocDims,
  table: ChunkTable,
  mode: MocMode,
  causalText: boolean,
  fn: (h: number, i: number, mask: Uint8Array, tokens: number) => void,
): void {
  const { H, N } = dims;
  const C = table.start.length;
  const chunkOf = tokenChunks(table);
  const mand = mandatoryChunks(table, causalText);
  const mask = new Uint8Array(C);
  for (let h = 0; h < H; h++) {
    for (let i = 0; i < N; i++) {
      mask.fill(mode === 'dense' ? 1 : 0);
      if (mode === 'moc') {
        for (const b of mand[chunkOf[i]]) mask[b] = 1;
        for (let j = 0; j < width; j++) {
          const r = routed[(h * N + i) * width + j];
          if (r >= 0) mask[r] = 1;
        }
      }
      let tokens = 0;
      for (let b = 0; b < C; b++) if (mask[b]) tokens += table.end[b] - table.start[b];
      fn(h, i, mask, tokens);
    }
  }
}

/**
 * out[h,i] = softmax(q[h,i]·K[h]ᵀ/√D + mask)·V[h]: a dense softmax over all N keys in which every
 * key outside Ω_h(i) = tokens of M(i) ∪ routed (all tokens when dense) scores −∞, float64, the
 * probabilities normalised before P·V. Ω is decided token by token from the contract's own
 * predicate (isMandatory, the routed set), not walked chunk by chunk: the kernels' CPU twin
 * (mocAttentionCpu) does that, so the two formulations check each other.
 * @param routed [H, N, width]; -1 entries are skipped.
 * @param causalText M(i) as in isMandatory (moc mode only: dense sees every token).
 */
export function mocAttentionReference(
  q: ArrayLike<number>,
  k: ArrayLike<number>,
  v: ArrayLike<number>,
  dims: MocDims,
  table: ChunkTable,
  routed: Int32Array,
  width: number,
  mode: MocMode,
  causalText = false,
): Float32Array {
  const { H, N, D } = dims;
  const out = new Float32Array(H * N * D);
  const scale = 1 / Math.sqrt(D);
  const chunkOf = tokenChunks(table);
  const p = new Float64Array(N);
  for (let h = 0; h < H; h++) {
    for (let i = 0; i < N; i++) {
      const listed = new Set<number>();
      for (let j = 0; j < width; j++) listed.add(routed[(h * N + i) * width + j]);
      const qo = (h * N + i) * D;
      for (let t = 0; t < N; t++) {
        const b = chunkOf[t];
        const inOmega = mode === 'dense' || isMandatory(table, chunkOf[i], b, causalText) || listed.has(b);
        let s = 0;
        if (inOmega) for (let d = 0; d < D; d++) s += q[qo + d] * k[(h * N + t) * D + d];
        p[t] = inOmega ? s * scale : -Infinity;
      }
      const max = p.reduce((m, x) => Math.max(m, x), -Infinity);
      let sum = 0;
      for (let t = 0; t < N; t++) sum += p[t] = Math.exp(p[t] - max);
      for (let d = 0; d < D; d++) {
        let o = 0;
        for (let t = 0; t < N; t++) if (p[t] > 0) o += (p[t] / sum) * v[(h * N + t) * D + d];
        out[qo + d] = o;
      }
    }
  }
  return out;
}

/** Sparsity as defined above, overall and per head. */
export function sparsityOf(
  routed: Int32Array,
  width: number,
  dims: MocDims,
  table: ChunkTable,
  mode: MocMode,
  causalText = false,
): { sparsity: number; perHead: Float64Array } {
  const { H, N } = dims;
  const visited = new Float64Array(H);
  forEachOmega(routed, width, dims, table, mode, causalText, (h, _i, _mask, tokens) => {
    visited[h] += tokens;
  });
  const perHead = visited.map((x) => 1 - x / (N * N));
  const total = visited.reduce((s, x) => s + x, 0);
  return { sparsity: 1 - total / (H * N * N), perHead };
}

/**
 * The whole reference: descriptors, routing, attention, sparsity.
 * @param view routing's own queries and keys (descriptors and scores from them); q, k when omitted.
 */
export function mocReference(
  q: Float32Array,
  k: Float32Array,
  v: Float32Array,
  dims: MocDims,
  table: ChunkTable,
  cfg: MocConfig,
  view?: RouteView,
): MocResult {
  const desc = chunkDescriptors(view?.k ?? k, dims, table);
  const routed = routeReference(view?.q ?? q, desc, dims, table, cfg);
  const ct = cfg.causalText ?? false;
  const out = mocAttentionReference(q, k, v, dims, table, routed, cfg.topK, cfg.mode, ct);
  const { sparsity, perHead } = sparsityOf(routed, cfg.topK, dims, table, cfg.mode, ct);
  return { out, routed, sparsity, sparsityPerHead: perHead };
}

export interface RegulariserOptions {
  /** p_max of context drop-off, in [0, 1]: drop ⌊u·p_max·m⌋ of the m selected chunks, u ~ U(0,1). */
  dropMax: number;
  /** λ of context drop-in: add min(Poisson(λ), #pool) random non-selected candidates. */
  dropInRate: number;
  seed: number;
}

/**
 * Training-time routing regularisers (context drop-off and drop-in), a pure function of the
 * routed indices so the PyTorch side can reproduce it draw for draw.
 *
 * RNG: one `Rng(seed)` (mulberry32, src/engine/random.ts); `next()` is U[0,1), `int(n)` is
 * ⌊next()·n⌋, `poisson(λ)` is Knuth's product method (exactly m+1 `next()` calls for result m).
 * Queries in order h = 0..H-1, then i = 0..N-1; text queries draw nothing. Per video query:
 *  1. sel = its routed entries ≥ 0 in slot order, m = |sel|.
 *  2. u = next(); drop = ⌊(u·dropMax)·m⌋ (floating point in that order, in double precision).
 *  3. drop times: j = int(|kept|); remove kept[j] (kept starts as sel; order preserved).
 *  4. a = poisson(dropInRate); pool = the query's candidates (isCandidate with `causal`) not in
 *     sel, increasing chunk index; add = min(a, |pool|).
 *  5. add times: j = int(|pool|); append pool[j] to the row; remove it from pool.
 * Steps 2 and 4 draw even when m = 0 or the pool is empty.
 * @returns rows of width K + max added (kept in slot order, then added in draw order, -1 after).
 */
export function regulariseRouting(
  routed: Int32Array,
  K: number,
  dims: { H: number; N: number },
  table: ChunkTable,
  causal: boolean,
  opts: RegulariserOptions,
): { routed: Int32Array; width: number } {
  const { H, N } = dims;
  const C = table.start.length;
  const rng = new Rng(opts.seed);
  const chunkOf = tokenChunks(table);
  const rows: number[][] = [];
  let maxAdded = 0;
  for (let h = 0; h < H; h++) {
    for (let i = 0; i < N; i++) {
      const a = chunkOf[i];
      if (table.kind[a] !== KIND_VIDEO) {
        rows.push([]);
        continue;
      }
      const sel: number[] = [];
      for (let j = 0; j < K; j++) {
        const r = routed[(h * N + i) * K + j];
        if (r >= 0) sel.push(r);
      }
      const kept = sel.slice();
      const drop = Math.floor(rng.next() * opts.dropMax * sel.length);
      for (let n = 0; n < drop; n++) kept.splice(rng.int(kept.length), 1);
      const pool: number[] = [];
      for (let b = 0; b < C; b++) if (isCandidate(table, a, b, causal) && !sel.includes(b)) pool.push(b);
      const add = Math.min(rng.poisson(opts.dropInRate), pool.length);
      for (let n = 0; n < add; n++) kept.push(pool.splice(rng.int(pool.length), 1)[0]);
      maxAdded = Math.max(maxAdded, add);
      rows.push(kept);
    }
  }
  const width = K + maxAdded;
  const out = new Int32Array(H * N * width).fill(-1);
  rows.forEach((row, q) => out.set(row, q * width));
  return { routed: out, width };
}
