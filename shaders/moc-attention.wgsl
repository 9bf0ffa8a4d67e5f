// moc-attention.wgsl — MoC sparse attention (MOC.md §3; §5 design A), fused: keys are read
// straight from k and v through a per-workgroup key list, never gathered into copies.
//
//   out[h,i] = softmax(q[h,i]·k[h,Ω]ᵀ·scale)·v[h,Ω],   Ω(i) = tokens of M(i) ∪ R(i)
//
// Bindings: @0 params {n, groups, scale_log2, chunks, seg_off, range_off, chunk_off, tiles};
// @1 q, @2 k, @3 v: [H, N, D] as array<vec4<T>>; @4 out [H, N, D];
// @5 plan: array<vec4<i32>>, records built by the wrapper (moc-attention.ts, mocPlan):
//     tiles  [T] (q0, q1, seg, 0)          a query tile: tokens q0..q1-1 of one segment
//     segs   [S] (range0, nranges, shot, nkeys)  a run of consecutive chunks of one shot
//     ranges [R] (start, end, vstart, 0)    merged token ranges of the segment's mandatory chunks;
//                                           vstart: first position in the mandatory key list
//     chunks [C] (start, end, shot, kind)   kind 0 text, 1 video
// @6 routed: array<i32> [H, N, RW]: routed chunk indices. −1, out-of-range and mandatory entries
//     are skipped and duplicates count once (Ω is a set).
//
// Geometry: one workgroup per (head, query tile): groups = H·T workgroups on a 2D grid,
// head-major. A tile never spans two segments, so its queries share M(i), which depends only on
// the query's shot. Invocation layout, register tiles, the workgroup tiles and the five steps per
// key tile are those of flash-attention.wgsl (see there). Keys come in phases, each a list of
// virtual keys walked in BK-key tiles back to back (short chunks still fill whole tiles):
//   1. mandatory: the segment's nkeys keys; key p → token through `ranges`; no masks.
//   2. routed, in batches of WG entries of the tile's routed table rt [BQ·RW] (workgroup memory):
//      invocation e keeps entry e when its chunk is valid, not mandatory and seen first at e,
//      and collects the rows that route that chunk as a bit mask (umask); an inclusive scan of
//      the kept chunks' lengths gives each entry its start in the batch's key list (ustart).
//      Key p → entry u by binary search over ustart; row r's score for a key of entry u is
//      masked unless bit r of umask[u] is set.
//
// Assumes (the wrapper checks): the flash-attention.wgsl tile limits, BQ ≤ 64 (two mask words),
// RW ≥ 1 when any tile has routed entries (a width-0 table runs phase 1 only).

const TQ: u32 = 4u;
const TK_MAX: u32 = 8u;
const TD4_MAX: u32 = 4u;
const PF_MAX: u32 = 16u;
const NEG: f32 = -1e30;
const MASKED: f32 = -2e30;

override D: u32 = 64u;
override BQ: u32 = 64u;
override BK: u32 = 32u;
override NCOL: u32 = 8u;
override RW: u32 = 0u;                      // routed width (slots per query)

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
override RT_LEN: u32 = max(BQ * RW, 1u);
override MW: u32 = (BQ + 31u) / 32u;         // mask words per union entry
override UM_LEN: u32 = WG * MW;
override US_LEN: u32 = WG + 1u;

struct Params {
  n: u32, groups: u32, scale_log2: f32, chunks: u32,
  seg_off: u32, range_off: u32, chunk_off: u32, tiles: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<vec4<T>>;
@group(0) @binding(2) var<storage, read> k: array<vec4<T>>;
@group(0) @binding(3) var<storage, read> v: array<vec4<T>>;
@group(0) @binding(4) var<storage, read_write> out: array<vec4<T>>;
@group(0) @binding(5) var<storage, read> plan: array<vec4<i32>>;
@group(0) @binding(6) var<storage, read> routed: array<i32>;

var<workgroup> qs: array<vec4<f32>, QS_LEN>;
var<workgroup> kp: array<vec4<f32>, KP_LEN>;
var<workgroup> vs: array<vec4<f32>, VS_LEN>;
var<workgroup> part: array<f32, PART_LEN>;
var<workgroup> rt: array<i32, RT_LEN>;       // routed table of the tile's rows, −1 past q1
var<workgroup> scan: array<u32, WG>;         // scan scratch, then the batch's total at [WG−1]
var<workgroup> ustart: array<u32, US_LEN>;   // start of entry u in the batch's key list
var<workgroup> utok: array<u32, WG>;         // first token of entry u's chunk
var<workgroup> umask: array<u32, UM_LEN>;    // rows of the tile that route entry u's chunk
var<workgroup> keyu: array<u32, BK>;         // entry of each key of the current routed tile

// Token of virtual key `pos` and (routed phase) its batch entry.
fn key_at(pos: u32, is_routed: bool, r0: u32, nr: u32) -> vec2<u32> {
  if (is_routed) {
    var lo = 0u;
    var hi = WG;
    while (hi - lo > 1u) {
      let mid = (lo + hi) / 2u;
      if (ustart[mid] <= pos) { lo = mid; } else { hi = mid; }
    }
    return vec2<u32>(utok[lo] + pos - ustart[lo], lo);
  }
  var r = vec4<i32>(plan[p.range_off + r0]);
  for (var i = 1u; i < nr; i++) {
    let c = plan[p.range_off + r0 + i];
    if (u32(c.z) > pos) { break; }
    r = c;
  }
  return vec2<u32>(u32(r.x) + pos - u32(r.z), 0u);
}

struct KV { k: vec4<f32>, v: vec4<f32>, u: u32 }

// Element e (a vec4) of key tile t of a phase with `count` keys; zeros past the end.
fn load_kv(base: u32, t: u32, e: u32, count: u32, is_routed: bool, r0: u32, nr: u32) -> KV {
  let pos = t * BK + e / D4;
  if (e >= BK * D4 || pos >= count) { return KV(vec4<f32>(0.0), vec4<f32>(0.0), 0u); }
  let tu = key_at(pos, is_routed, r0, nr);
  let g = (base + tu.x) * D4 + e % D4;
  return KV(vec4<f32>(k[g]), vec4<f32>(v[g]), tu.y);
}

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
  let g = linear_group(wid, nwg);
  if (g >= p.groups) { return; }
  let h = g / p.tiles;
  let tile = plan[g % p.tiles];
  let q0 = u32(tile.x);
  let rows = u32(tile.y) - q0;
  let seg = plan[p.seg_off + u32(tile.z)];
  let r0 = u32(seg.x);
  let nr = u32(seg.y);
  let shot = seg.z;
  let base = h * p.n;
  let rg = lid / NCOL;
  let col = lid % NCOL;

  for (var e = lid; e < BQ * D4; e += WG) {
    let r = e / D4;
    var x = vec4<f32>(0.0);
    if (r < rows) { x = vec4<f32>(q[(base + q0 + r) * D4 + e % D4]) * p.scale_log2; }
    qs[r * KS + e % D4] = x;
  }
  let nent = rows * RW;                       // routed entries of this tile
  for (var e = lid; e < BQ * RW; e += WG) {
    var c = -1;
    if (e < nent) { c = routed[(base + q0) * RW + e]; }
    rt[e] = c;
  }

  var m = array<f32, TQ>(NEG, NEG, NEG, NEG);
  var l = array<f32, TQ>();
  var o = array<array<vec4<f32>, TD4_MAX>, TQ>();
  var pk: array<vec4<f32>, PF_MAX>;
  var pv: array<vec4<f32>, PF_MAX>;
  var pu: array<u32, PF_MAX>;

  var count = u32(seg.w);                     // keys of the current phase
  var is_routed = false;
  let nbatch = (nent + WG - 1u) / WG;
  var batch = 0u;
  loop {
    let ntiles = (count + BK - 1u) / BK;
    if (ntiles > 0u) {
      for (var u = 0u; u < PF; u++) {
        let x = load_kv(base, 0u, lid + u * WG, count, is_routed, r0, nr);
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
          if (e % D4 == 0u) { keyu[e / D4] = pu[u]; }
        }
      }
      workgroupBarrier();
      if (t + 1u < ntiles) {
        for (var u = 0u; u < PF; u++) {
          let x = load_kv(base, t + 1u, lid + u * WG, count, is_routed, r0, nr);
          pk[u] = x.k; pv[u] = x.v; pu[u] = x.u;
        }
      }

      var s = array<array<f32, TK_MAX>, TQ>();
      for (var d = 0u; d < D4; d++) {
        var qv: array<vec4<f32>, TQ>;
        for (var i = 0u; i < TQ; i++) { qv[i] = qs[(rg + NRG * i) * KS + d]; }
        for (var j = 0u; j < TK; j++) {
          let kv = kp[(col + NCOL * j) * KS + d];
          for (var i = 0u; i < TQ; i++) { s[i][j] += dot(qv[i], kv); }
        }
      }
      if (is_routed || (t + 1u) * BK > count) {
        for (var j = 0u; j < TK; j++) {
          let kk = col + NCOL * j;
          if (t * BK + kk >= count) {
            for (var i = 0u; i < TQ; i++) { s[i][j] = MASKED; }
          } else if (is_routed) {
            let u = keyu[kk];
            for (var i = 0u; i < TQ; i++) {
              let row = rg + NRG * i;
              if (((umask[u * MW + row / 32u] >> (row % 32u)) & 1u) == 0u) { s[i][j] = MASKED; }
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
      workgroupBarrier();                                // P complete

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

    if (batch >= nbatch) { break; }
    // Next batch of routed entries: keep first occurrences of valid, non-mandatory chunks.
    workgroupBarrier();                                  // last tile is done with ustart, umask, keyu
    let e = batch * WG + lid;
    var len = 0u;
    var first_tok = 0u;
    var mask = array<u32, 2>();
    var c = -1;
    if (e < nent) { c = rt[e]; }
    if (c >= 0 && u32(c) < p.chunks) {
      let ch = plan[p.chunk_off + u32(c)];
      if (ch.w != 0 && ch.z != shot) {
        var first = true;
        for (var f = 0u; f < nent; f++) {
          if (rt[f] == c) {
            if (f < e) { first = false; break; }
            let row = f / max(RW, 1u);
            mask[row / 32u] |= 1u << (row % 32u);
          }
        }
        if (first) {
          len = u32(ch.y - ch.x);
          first_tok = u32(ch.x);
        }
      }
    }
    scan[lid] = len;
    for (var off = 1u; off < WG; off *= 2u) {
      workgroupBarrier();
      var add = 0u;
      if (lid >= off) { add = scan[lid - off]; }
      workgroupBarrier();
      scan[lid] += add;
    }
    ustart[lid + 1u] = scan[lid];
    if (lid == 0u) { ustart[0] = 0u; }
    utok[lid] = first_tok;
    for (var w = 0u; w < MW; w++) { umask[lid * MW + w] = mask[w]; }
    count = workgroupUniformLoad(&scan[WG - 1u]);      // barrier: the batch's lists are complete
    is_routed = true;
    batch++;
  }

  for (var i = 0u; i < TQ; i++) { part[(rg + NRG * i) * NCOL + col] = l[i]; }
  workgroupBarrier();
  for (var i = 0u; i < TQ; i++) {
    let row = rg + NRG * i;
    if (row < rows) {
      var sum = 0.0;
      for (var c = 0u; c < NCOL; c++) { sum += part[row * NCOL + c]; }
      let inv = select(0.0, 1.0 / sum, sum > 0.0);
      for (var c = 0u; c < TD4; c++) {
        out[(base + q0 + row) * D4 + col + NCOL * c] = vec4<T>(o[i][c] * inv);
      }
    }
  }
}
