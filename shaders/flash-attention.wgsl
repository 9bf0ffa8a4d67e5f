// flash-attention.wgsl — dense attention, out[h,i] = softmax(q[h,i]·k[h]ᵀ·scale)·v[h], one pass
// over the keys with an online softmax (running max and sum per query row, f32 throughout).
//
// Bindings: @0 params {n, qtiles, groups, scale_log2}; @1 q, @2 k, @3 v: [H, N, D] row-major
// (D contiguous) viewed as array<vec4<T>>; @4 out: [H, N, D], array<vec4<T>>.
//
// Geometry: one workgroup per (head, tile of BQ queries): groups = H·qtiles workgroups on a 2D
// grid (grid2d), head-major. WG = NRG·NCOL invocations, NRG = BQ/TQ row groups of NCOL each.
// Invocation (rg, col) owns the query rows rg + NRG·i (i < TQ); of each key tile it scores the
// keys col + NCOL·j (j < TK = BK/NCOL), and of the output it owns the vec4 columns col + NCOL·c
// (c < TD4 = D/4/NCOL). So S is a TQ×TK register tile and O a TQ×(4·TD4) register tile.
// Per tile of BK keys:
//   1. store the K and V tile (loaded into registers while the previous tile computes) to kp and vs
//   2. S = Q·Kᵀ from workgroup memory (qs holds Q pre-scaled by scale·log2 e: scores in log2 units)
//   3. each invocation's row maxima → part; the row max is the max over the NCOL partials
//   4. P = exp2(S − m) overwrites the K tile as [BK][NRG+1] vec4 (the 4 rows of a row group per
//      key), O and the partial row sums are rescaled by exp2(m_old − m_new)
//   5. O += P·V
// Four barriers per tile. At the end the NCOL partial row sums meet in `part` and out = O / l.
// Workgroup memory: Q BQ·(D/4+1), K/P max(BK·(D/4+1), BK·(NRG+1)), V BK·(D/4+1) vec4, and
// BQ·NCOL f32; rows padded by one vec4 so the strided reads hit distinct banks.
//
// Assumes (the wrapper checks): D % (4·NCOL) == 0, BK % NCOL == 0, BQ % TQ == 0,
// TK ≤ TK_MAX, TD4 ≤ TD4_MAX, ceil(BK·D/4 / WG) ≤ PF_MAX. N ≥ 1.

const TQ: u32 = 4u;          // query rows per invocation (P packs them as one vec4 per key)
const TK_MAX: u32 = 8u;      // keys per invocation per tile
const TD4_MAX: u32 = 4u;     // output vec4 columns per invocation
const PF_MAX: u32 = 16u;     // vec4 of K (and of V) each invocation loads per tile
const NEG: f32 = -1e30;      // initial running max: finite, so exp2(NEG − NEG) = 1, not NaN
const MASKED: f32 = -2e30;   // score of a key past the end: exp2(MASKED − m) = 0 for any m ≥ NEG

override D: u32 = 64u;
override BQ: u32 = 64u;
override BK: u32 = 32u;
override NCOL: u32 = 8u;

override NRG: u32 = BQ / TQ;
override WG: u32 = NRG * NCOL;
override D4: u32 = D / 4u;
override KS: u32 = D4 + 1u;                 // row stride (vec4) of the Q, K and V tiles
override PS: u32 = NRG + 1u;                // row stride (vec4) of P
override TK: u32 = BK / NCOL;
override TD4: u32 = D4 / NCOL;
override PF: u32 = (BK * D4 + WG - 1u) / WG;
override QS_LEN: u32 = BQ * KS;
override KP_LEN: u32 = max(BK * KS, BK * PS);
override VS_LEN: u32 = BK * KS;
override PART_LEN: u32 = BQ * NCOL;

struct Params { n: u32, qtiles: u32, groups: u32, scale_log2: f32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<vec4<T>>;
@group(0) @binding(2) var<storage, read> k: array<vec4<T>>;
@group(0) @binding(3) var<storage, read> v: array<vec4<T>>;
@group(0) @binding(4) var<storage, read_write> out: array<vec4<T>>;

var<workgroup> qs: array<vec4<f32>, QS_LEN>;
var<workgroup> kp: array<vec4<f32>, KP_LEN>;
var<workgroup> vs: array<vec4<f32>, VS_LEN>;
var<workgroup> part: array<f32, PART_LEN>;

struct KV { k: vec4<f32>, v: vec4<f32> }

// Element e (a vec4) of key tile t of the head whose first row is `base`; zeros past the end.
fn load_kv(base: u32, t: u32, e: u32) -> KV {
  let key = t * BK + e / D4;
  if (e >= BK * D4 || key >= p.n) { return KV(vec4<f32>(0.0), vec4<f32>(0.0)); }
  let g = (base + key) * D4 + e % D4;
  return KV(vec4<f32>(k[g]), vec4<f32>(v[g]));
}

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
  let g = linear_group(wid, nwg);
  if (g >= p.groups) { return; }
  let base = (g / p.qtiles) * p.n;   // first row of this head
  let q0 = (g % p.qtiles) * BQ;      // first query of this tile
  let rg = lid / NCOL;
  let col = lid % NCOL;

  for (var e = lid; e < BQ * D4; e += WG) {
    let r = e / D4;
    var x = vec4<f32>(0.0);
    if (q0 + r < p.n) { x = vec4<f32>(q[(base + q0 + r) * D4 + e % D4]) * p.scale_log2; }
    qs[r * KS + e % D4] = x;
  }

  var m = array<f32, TQ>(NEG, NEG, NEG, NEG);                // running row max (log2 units)
  var l = array<f32, TQ>();                                   // this invocation's share of the row sum
  var o = array<array<vec4<f32>, TD4_MAX>, TQ>();            // output rows × owned columns

  let ntiles = (p.n + BK - 1u) / BK;
  var pk: array<vec4<f32>, PF_MAX>;                    // the next K and V tile, in flight
  var pv: array<vec4<f32>, PF_MAX>;
  for (var u = 0u; u < PF; u++) { let x = load_kv(base, 0u, lid + u * WG); pk[u] = x.k; pv[u] = x.v; }
  for (var t = 0u; t < ntiles; t++) {
    workgroupBarrier();                                  // previous tile's P·V is done with kp, vs
    for (var u = 0u; u < PF; u++) {
      let e = lid + u * WG;
      if (e < BK * D4) {
        kp[(e / D4) * KS + e % D4] = pk[u];
        vs[(e / D4) * KS + e % D4] = pv[u];
      }
    }
    workgroupBarrier();
    if (t + 1u < ntiles) {
      for (var u = 0u; u < PF; u++) { let x = load_kv(base, t + 1u, lid + u * WG); pk[u] = x.k; pv[u] = x.v; }
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
    if ((t + 1u) * BK > p.n) {
      for (var j = 0u; j < TK; j++) {
        if (t * BK + col + NCOL * j >= p.n) {
          for (var i = 0u; i < TQ; i++) { s[i][j] = MASKED; }
        }
      }
    }
    for (var i = 0u; i < TQ; i++) {
      var mx = s[i][0];
      for (var j = 1u; j < TK; j++) { mx = max(mx, s[i][j]); }
      part[(rg + NRG * i) * NCOL + col] = mx;
    }
    workgroupBarrier();                                  // all partial maxima written, K no longer read

    for (var i = 0u; i < TQ; i++) {
      var mn = m[i];
      for (var c = 0u; c < NCOL; c++) { mn = max(mn, part[(rg + NRG * i) * NCOL + c]); }
      let alpha = exp2(m[i] - mn);
      m[i] = mn;
      l[i] *= alpha;
      for (var c = 0u; c < TD4; c++) { o[i][c] *= alpha; }
      for (var j = 0u; j < TK; j++) {
        s[i][j] = exp2(s[i][j] - mn);
        l[i] += s[i][j];
      }
    }
    for (var j = 0u; j < TK; j++) {
      kp[(col + NCOL * j) * PS + rg] = vec4<f32>(s[0][j], s[1][j], s[2][j], s[3][j]);
    }
    workgroupBarrier();                                  // P complete

    for (var j = 0u; j < BK; j++) {
      let pr = kp[j * PS + rg];
      for (var c = 0u; c < TD4; c++) {
        let vv = vs[j * KS + col + NCOL * c];
        o[0][c] += pr.x * vv;
        o[1][c] += pr.y * vv;
        o[2][c] += pr.z * vv;
        o[3][c] += pr.w * vv;
      }
    }
  }

  // Row sums: each invocation holds the sum over its own keys, all scaled to the same max.
  for (var i = 0u; i < TQ; i++) { part[(rg + NRG * i) * NCOL + col] = l[i]; }
  workgroupBarrier();
  for (var i = 0u; i < TQ; i++) {
    let row = rg + NRG * i;
    if (q0 + row < p.n) {
      var sum = 0.0;
      for (var c = 0u; c < NCOL; c++) { sum += part[row * NCOL + c]; }
      let inv = select(0.0, 1.0 / sum, sum > 0.0);
      for (var c = 0u; c < TD4; c++) {
        out[(base + q0 + row) * D4 + col + NCOL * c] = vec4<T>(o[i][c] * inv);
      }
    }
  }
}
