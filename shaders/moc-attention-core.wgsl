// moc-attention-core.wgsl — the one key-tile loop of every attention kernel: dense flash
// attention (flash-attention.wgsl: one direct list of all N keys) and the two fused MoC sparse
// designs of MOC.md §5, moc-attention.wgsl (design A, query tiles against the union of their
// routed chunks) and moc-attention-grouped.wgsl (design B, queries grouped by routed chunk).
// The wrappers build each kernel with attentionSource (src/engine/kernels/flash-attention.ts):
// preamble + common.wgsl + the register-tile bounds TQ, TK_MAX, TD4_MAX, PF_MAX (emitted from
// TS, which checks tiles against the same numbers) + this file + the design's file.
//
// Geometry: a workgroup holds up to BQ query rows (qs, pre-scaled by scale·log2 e: scores in
// log2 units). WG = NRG·NCOL invocations, NRG = BQ/TQ row groups of NCOL each. Invocation
// (rg, col) owns the query rows rg + NRG·i (i < TQ); of each key tile it scores the keys
// col + NCOL·j (j < TK = BK/NCOL), and of the output it owns the vec4 columns col + NCOL·c
// (c < TD4 = D/4/NCOL). So S is a TQ×TK register tile and O a TQ×(4·TD4) register tile (TQ is 4:
// P packs a row group's four rows as one vec4 per key).
// `attend` walks a list of `count` virtual keys in BK-key tiles back to back; per tile:
//   1. store the K and V tile (loaded into registers while the previous tile computes) to kp, vs
//   2. S = Q·Kᵀ from workgroup memory; keys past the list's end (and, in masked lists, keys the
//      row may not see) score MASKED
//   3. each invocation's row maxima → part; the row max is the max over the NCOL partials
//   4. P = exp2(S − m) overwrites the K tile as [BK][NRG+1] vec4 (the 4 rows of a row group per
//      key), O and the partial row sums are rescaled by exp2(m_old − m_new)
//   5. O += P·V
// Four barriers per tile. Online-softmax state (running max m, partial row sum l, output O) lives
// in an Acc that carries over from one key list to the next, so Ω may be spread over several
// lists; `finish` meets the NCOL partial row sums in `part` and hands out O / l.
// Workgroup memory: Q BQ·(D/4+1), K/P max(BK·(D/4+1), BK·(NRG+1)), V BK·(D/4+1) vec4, BQ·NCOL
// f32 and BK u32 tags; rows padded by one vec4 so the strided reads hit distinct banks.
// A list is either `direct` (virtual key p is token k0 + p: one contiguous range) or goes through
// the design's key_token hook. `masked` and `direct` are constants at every call site, so after
// inlining each call site's loop carries only the addressing and masking it uses.
//
// Bindings common to every design are declared here: @1 q, @2 k, @3 v [H, N, D] and @4 out
// [H, N, D], as array<vec4<T>>; @5 plan: array<vec4<i32>>, the wrapper's records (mocPlan),
// among them the merged mandatory token ranges (start, end, vstart, 0) at p.range_off (a design
// that never calls range_token leaves @5 unused). The design's file declares @0 `p` (a Params
// with range_off) and its bindings from @6 on, and defines the hooks:
//   fn row_token(r: u32) -> u32          token of tile row r (r < the tile's rows)
//   fn key_token(pos: u32) -> vec2<u32>  (token, tag) of virtual key `pos` of the current list
//   fn key_visible(tag: u32, row: u32) -> bool   row sees keys with this tag (masked lists only)
//   fn store_out(row: u32, c4: u32, x: vec4<f32>)  vec4 column c4 of a finished (normalised) row
//   fn store_lse(row: u32, lse: f32)     the row's log2-sum-exp of its scaled scores
//
// Assumes (the wrapper checks, flashTileProblem): D % (4·NCOL) == 0, BK % NCOL == 0,
// BQ % TQ == 0, TK ≤ TK_MAX, TD4 ≤ TD4_MAX, ceil(BK·D/4 / WG) ≤ PF_MAX; N ≥ 1, count keys valid.

const NEG: f32 = -1e30;      // initial running max: finite, so exp2(NEG − NEG) = 1, not NaN
const MASKED: f32 = -2e30;   // a hidden key's score: exp2(MASKED − m) = 0 for any m ≥ NEG

override D: u32 = 64u;
override BQ: u32 = 64u;
override BK: u32 = 32u;
override NCOL: u32 = 8u;

override NRG: u32 = BQ / TQ;
override WG: u32 = NRG * NCOL;
override D4: u32 = D / 4u;
override KS: u32 = D4 + 1u;
override PS: u32 = NRG + 1u;
override TK: u32 = BK / NCOL;
override TD4: u32 = D4 / NCOL;
override PF: u32 = (BK * D4 + WG - 1u) / WG;
override QS_LEN: u32 = BQ * KS;
override KP_LEN: u32 = max(BK * KS, BK * PS);
override VS_LEN: u32 = BK * KS;
override PART_LEN: u32 = BQ * NCOL;

@group(0) @binding(1) var<storage, read> q: array<vec4<T>>;
@group(0) @binding(2) var<storage, read> k: array<vec4<T>>;
@group(0) @binding(3) var<storage, read> v: array<vec4<T>>;
@group(0) @binding(4) var<storage, read_write> out: array<vec4<T>>;
@group(0) @binding(5) var<storage, read> plan: array<vec4<i32>>;

var<workgroup> qs: array<vec4<f32>, QS_LEN>;
var<workgroup> kp: array<vec4<f32>, KP_LEN>;
var<workgroup> vs: array<vec4<f32>, VS_LEN>;
var<workgroup> part: array<f32, PART_LEN>;
var<workgroup> keyu: array<u32, BK>;         // tag of each key of the current tile

struct Acc {
  m: array<f32, TQ>,                          // running row max (log2 units)
  l: array<f32, TQ>,                          // this invocation's share of the row sum
  o: array<array<vec4<f32>, TD4_MAX>, TQ>,   // output rows × owned columns
}

fn acc_new() -> Acc {
  var a: Acc;
  a.m = array<f32, TQ>(NEG, NEG, NEG, NEG);
  a.l = array<f32, TQ>();
  a.o = array<array<vec4<f32>, TD4_MAX>, TQ>();
  return a;
}

// Stages rows 0..rows-1 of the tile (tokens row_token(r) of the head at `base`) into qs, zeros past.
fn load_q(base: u32, rows: u32, scale_log2: f32, lid: u32) {
  for (var e = lid; e < BQ * D4; e += WG) {
    let r = e / D4;
    var x = vec4<f32>(0.0);
    if (r < rows) { x = vec4<f32>(q[(base + row_token(r)) * D4 + e % D4]) * scale_log2; }
    qs[r * KS + e % D4] = x;
  }
}

// Token of virtual key `pos` of a mandatory list: ranges r0..r0+nr-1 by binary search on vstart.
fn range_token(pos: u32, r0: u32, nr: u32) -> u32 {
  var lo = 0u;
  var hi = nr;
  while (hi - lo > 1u) {
    let mid = (lo + hi) / 2u;
    if (u32(plan[p.range_off + r0 + mid].z) <= pos) { lo = mid; } else { hi = mid; }
  }
  let r = plan[p.range_off + r0 + lo];
  return u32(r.x) + pos - u32(r.z);
}

struct KV { k: vec4<f32>, v: vec4<f32>, u: u32 }

// Element e (a vec4) of key tile t of a list of `count` keys (direct: tokens k0, k0 + 1, …;
// else through key_token); zeros past the end.
fn load_kv(base: u32, t: u32, e: u32, count: u32, direct: bool, k0: u32) -> KV {
  let pos = t * BK + e / D4;
  if (e >= BK * D4 || pos >= count) { return KV(vec4<f32>(0.0), vec4<f32>(0.0), 0u); }
  var tu = vec2<u32>(k0 + pos, 0u);
  if (!direct) { tu = key_token(pos); }
  let g = (base + tu.x) * D4 + e % D4;
  return KV(vec4<f32>(k[g]), vec4<f32>(v[g]), tu.y);
}

// One key list: `count` keys of the head at `base`, direct from token k0 or through key_token;
// with `masked`, row r sees key j only when key_visible(tag of j, r). Must be called in uniform
// control flow (it holds barriers).
fn attend(acc: ptr<function, Acc>, base: u32, count: u32, masked: bool, direct: bool, k0: u32, lid: u32) {
  let rg = lid / NCOL;
  let col = lid % NCOL;
  let ntiles = (count + BK - 1u) / BK;
  var pk: array<vec4<f32>, PF_MAX>;                     // the next K and V tile, in flight
  var pv: array<vec4<f32>, PF_MAX>;
  var pu: array<u32, PF_MAX>;
  if (ntiles > 0u) {
    for (var u = 0u; u < PF; u++) {
      let x = load_kv(base, 0u, lid + u * WG, count, direct, k0);
      pk[u] = x.k; pv[u] = x.v; pu[u] = x.u;
    }
  }
  for (var t = 0u; t < ntiles; t++) {
    workgroupBarrier();                                // previous tile's P·V is done with kp, vs
    for (var u = 0u; u < PF; u++) {
      let e = lid + u * WG;
      if (e < BK * D4) {
        kp[(e / D4) * KS + e % D4] = pk[u];
        vs[(e / D4) * KS + e % D4] = pv[u];
        if (masked && e % D4 == 0u) { keyu[e / D4] = pu[u]; }
      }
    }
    workgroupBarrier();
    if (t + 1u < ntiles) {
      for (var u = 0u; u < PF; u++) {
        let x = load_kv(base, t + 1u, lid + u * WG, count, direct, k0);
        pk[u] = x.k; pv[u] = x.v; pu[u] = x.u;
      }
    }

    // S = Q·Kᵀ for rows rg + NRG·i, keys col + NCOL·j
    var s = array<array<f32, TK_MAX>, TQ>();  // explicit zero: a bare `var s;` kept its value across iterations on SwiftShader
    for (var d = 0u; d < D4; d++) {
      var qv: array<vec4<f32>, TQ>;
      for (var i = 0u; i < TQ; i++) { qv[i] = qs[(rg + NRG * i) * KS + d]; }
      for (var j = 0u; j < TK; j++) {
        let kv = kp[(col + NCOL * j) * KS + d];
        for (var i = 0u; i < TQ; i++) { s[i][j] += dot(qv[i], kv); }
      }
    }
    if (masked || (t + 1u) * BK > count) {
      for (var j = 0u; j < TK; j++) {
        let kk = col + NCOL * j;
        if (t * BK + kk >= count) {
          for (var i = 0u; i < TQ; i++) { s[i][j] = MASKED; }
        } else if (masked) {
          let u = keyu[kk];
          for (var i = 0u; i < TQ; i++) {
            if (!key_visible(u, rg + NRG * i)) { s[i][j] = MASKED; }
          }
        }
      }
    }
    for (var i = 0u; i < TQ; i++) {
      var mx = s[i][0];
      for (var j = 1u; j < TK; j++) { mx = max(mx, s[i][j]); }
      part[(rg + NRG * i) * NCOL + col] = mx;
    }
    workgroupBarrier();                                // partial maxima written, K no longer read

    for (var i = 0u; i < TQ; i++) {
      var mn = (*acc).m[i];
      for (var c = 0u; c < NCOL; c++) { mn = max(mn, part[(rg + NRG * i) * NCOL + c]); }
      let alpha = exp2((*acc).m[i] - mn);
      (*acc).m[i] = mn;
      (*acc).l[i] *= alpha;
      for (var c = 0u; c < TD4; c++) { (*acc).o[i][c] *= alpha; }
      for (var j = 0u; j < TK; j++) {
        s[i][j] = exp2(s[i][j] - mn);
        (*acc).l[i] += s[i][j];
      }
    }
    for (var j = 0u; j < TK; j++) {
      kp[(col + NCOL * j) * PS + rg] = vec4<f32>(s[0][j], s[1][j], s[2][j], s[3][j]);
    }
    workgroupBarrier();                                // P complete

    for (var j = 0u; j < BK; j++) {
      let pr = kp[j * PS + rg];
      for (var c = 0u; c < TD4; c++) {
        let vv = vs[j * KS + col + NCOL * c];
        (*acc).o[0][c] += pr.x * vv;
        (*acc).o[1][c] += pr.y * vv;
        (*acc).o[2][c] += pr.z * vv;
        (*acc).o[3][c] += pr.w * vv;
      }
    }
  }
}

// Hands rows 0..rows-1 to the hooks: O / l through store_out, m + log2 l through store_lse
// (once per row). The NCOL partial row sums meet in `part`, free once every invocation has left
// `attend`. Uniform control flow (a barrier).
fn finish(acc: ptr<function, Acc>, rows: u32, lid: u32) {
  let rg = lid / NCOL;
  let col = lid % NCOL;
  for (var i = 0u; i < TQ; i++) { part[(rg + NRG * i) * NCOL + col] = (*acc).l[i]; }
  workgroupBarrier();
  for (var i = 0u; i < TQ; i++) {
    let row = rg + NRG * i;
    if (row < rows) {
      var sum = 0.0;
      for (var c = 0u; c < NCOL; c++) { sum += part[row * NCOL + c]; }
      let inv = select(0.0, 1.0 / sum, sum > 0.0);
      for (var c = 0u; c < TD4; c++) { store_out(row, col + NCOL * c, (*acc).o[i][c] * inv); }
      if (col == 0u) { store_lse(row, (*acc).m[i] + log2(sum)); }
    }
  }
}
