// matmul.wgsl — out[M,N] = a[M,K] · B + bias[N], with B = b[K,N], or b[N,K]ᵀ when TRANS_B
// (the PyTorch Linear weight layout). Accumulates in f32 whatever the storage type T.
//
// Bindings: @0 params {M, N, K, tiles_m, tiles_n}; @1 a: row-major [M,K]; @2 b: row-major [K,N]
// ([N,K] with TRANS_B); @3 bias [N] (bound to any buffer and never read unless HAS_BIAS);
// @4 out: row-major [M,N]. a and b are viewed as array<vec4<T>> (the engine pads every buffer
// to 16 bytes); out and bias are scalar arrays, so no two invocations ever share a vector.
//
// Geometry: a workgroup of WGX×WGY invocations computes one BM×BN tile of out (BM = WGY·TM,
// BN = WGX·TN). Invocation (tx, ty) holds a TM×TN micro-tile in registers: rows ty·TM + r
// (r < TM) and, for column group h < TN/4 and lane j < 4, column (h·WGX + tx)·4 + j, or
// (4h + j)·WGX + tx with TRANS_B (so both layouts read workgroup memory without bank conflicts).
// K is walked in BK-deep slices through two workgroup-memory stages (one barrier per slice); the
// next slice's global loads are issued before the current slice is multiplied.
//   As stage: [BM][BK/4] vec4 along k.  Bs stage: [BK][BN/4] vec4 along n, or with TRANS_B
//   [BN][BK/4] vec4 along k with the vec4 slot of row n XOR-ed by swz(n), so that the eight rows
//   read together by a quarter-warp land in distinct banks.
// Workgroups form a 1D grid (grid2d); ids are mapped to tiles in bands of GROUP_M tile rows, so
// workgroups running together share panels of a and b in L2.
//
// Assumes (the wrapper checks): TM ≤ 8, TN ∈ {4, 8}, BK ∈ {4, 8, 16, 32}, at most 4 vec4 loads
// per invocation per operand and slice. VEC_A: K % 4 == 0; VEC_B: N % 4 == 0 (K % 4 == 0 with
// TRANS_B). With VEC_* a slice row is loaded as whole vec4s; without, element by element.

override WGX: u32 = 16u;
override WGY: u32 = 16u;
override TM: u32 = 8u;
override TN: u32 = 8u;
override BK: u32 = 16u;
override GROUP_M: u32 = 8u;
override TRANS_B: bool = false;
override HAS_BIAS: bool = false;
override VEC_A: bool = true;
override VEC_B: bool = true;

override NT: u32 = WGX * WGY;
override BM: u32 = WGY * TM;
override BN: u32 = WGX * TN;
override BK4: u32 = BK / 4u;
override TN4: u32 = TN / 4u;
override SWZ_ROWS: u32 = max(1u, 8u / BK4); // rows of Bs (TRANS_B) per 128-byte line
override A_TILE: u32 = BM * BK4;
override B_TILE: u32 = BK * BN / 4u;
override A_LOADS: u32 = (A_TILE + NT - 1u) / NT;
override B_LOADS: u32 = (BK * BN / 4u + NT - 1u) / NT;
override A_LEN: u32 = 2u * A_TILE;
override B_LEN: u32 = 2u * B_TILE;

struct Params { M: u32, N: u32, K: u32, tiles_m: u32, tiles_n: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<vec4<T>>;
@group(0) @binding(2) var<storage, read> b: array<vec4<T>>;
@group(0) @binding(3) var<storage, read> bias: array<T>;
@group(0) @binding(4) var<storage, read_write> out: array<T>;

var<workgroup> As: array<vec4<f32>, A_LEN>;
var<workgroup> Bs: array<vec4<f32>, B_LEN>;

// a[row, k..k+3] (zero outside [M,K]); k is a multiple of 4.
fn load_a(row: u32, k: u32) -> vec4<f32> {
  if (row >= p.M || k >= p.K) { return vec4<f32>(0.0); }
  if (VEC_A) { return vec4<f32>(a[(row * p.K + k) / 4u]); }
  var v = vec4<f32>(0.0);
  for (var j = 0u; j < 4u; j++) {
    let i = row * p.K + k + j;
    if (k + j < p.K) { v[j] = f32(a[i / 4u][i % 4u]); }
  }
  return v;
}

// Four consecutive elements of b's row `row` from column `col` (zero outside `rows`×`cols`).
fn load_b(row: u32, col: u32, rows: u32, cols: u32) -> vec4<f32> {
  if (row >= rows || col >= cols) { return vec4<f32>(0.0); }
  if (VEC_B) { return vec4<f32>(b[(row * cols + col) / 4u]); }
  var v = vec4<f32>(0.0);
  for (var j = 0u; j < 4u; j++) {
    let i = row * cols + col + j;
    if (col + j < cols) { v[j] = f32(b[i / 4u][i % 4u]); }
  }
  return v;
}

// Slot v of a slice: a's tile is [BM][BK/4] vec4, b's [BK][BN/4] (or [BN][BK/4] with TRANS_B).
fn fetch_a(v: u32, m0: u32, k0: u32) -> vec4<f32> {
  return load_a(m0 + v / BK4, k0 + 4u * (v % BK4));
}

fn fetch_b(v: u32, n0: u32, k0: u32) -> vec4<f32> {
  if (TRANS_B) { return load_b(n0 + v / BK4, k0 + 4u * (v % BK4), p.N, p.K); }
  return load_b(k0 + v / (BN / 4u), n0 + 4u * (v % (BN / 4u)), p.K, p.N);
}

// Bank swizzle of row n of a TRANS_B stage (a vec4 slot < BK4).
fn swz(n: u32) -> u32 {
  return (n / SWZ_ROWS) % BK4;
}

fn b_slot(v: u32) -> u32 {
  if (TRANS_B) { return v ^ swz(v / BK4); }
  return v;
}

@compute @workgroup_size(WGX, WGY)
fn main(@builtin(local_invocation_id) lid3: vec3<u32>, @builtin(local_invocation_index) lid: u32, grid: Grid) {
  let pid = linear_group(grid);
  if (pid >= p.tiles_m * p.tiles_n) { return; }
  let band = GROUP_M * p.tiles_n;
  let first_m = (pid / band) * GROUP_M;
  let rows_in_band = min(p.tiles_m - first_m, GROUP_M);
  let tile_m = first_m + (pid % band) % rows_in_band;
  let tile_n = (pid % band) / rows_in_band;
  let m0 = tile_m * BM;
  let n0 = tile_n * BN;
  let tx = lid3.x;
  let ty = lid3.y;

  var acc: array<vec4<f32>, 16>; // acc[r * TN4 + h]: row r, column group h
  var ra: array<vec4<f32>, 4>;    // the next slice, on its way to workgroup memory
  var rb: array<vec4<f32>, 4>;

  // TRANS_B: Bs row of column c = (4h + j)·WGX + tx; its vec4 slot kc is at sb + (rowb[c] ^ kc).
  var rowb: array<u32, 8>;
  for (var c = 0u; c < TN; c++) {
    let n = c * WGX + tx;
    rowb[c] = (n * BK4) | swz(n);
  }

  let slices = (p.K + BK - 1u) / BK;
  for (var i = 0u; i < A_LOADS; i++) {
    let v = lid + i * NT;
    if (v < A_TILE) { As[v] = fetch_a(v, m0, 0u); }
  }
  for (var i = 0u; i < B_LOADS; i++) {
    let v = lid + i * NT;
    if (v < BK * BN / 4u) { Bs[b_slot(v)] = fetch_b(v, n0, 0u); }
  }
  workgroupBarrier();

  for (var s = 0u; s < slices; s++) {
    let stage = s % 2u;
    let more = s + 1u < slices;
    if (more) {
      let k1 = (s + 1u) * BK;
      for (var i = 0u; i < A_LOADS; i++) {
        let v = lid + i * NT;
        if (v < A_TILE) { ra[i] = fetch_a(v, m0, k1); }
      }
      for (var i = 0u; i < B_LOADS; i++) {
        let v = lid + i * NT;
        if (v < BK * BN / 4u) { rb[i] = fetch_b(v, n0, k1); }
      }
    }

    let sa = stage * A_TILE + ty * TM * BK4;
    let sb = stage * B_TILE;
    for (var kc = 0u; kc < BK4; kc++) {
      var av: array<vec4<f32>, 8>; // av[r]: a[row r, k .. k+3]
      for (var r = 0u; r < TM; r++) { av[r] = As[sa + r * BK4 + kc]; }
      var bv: array<vec4<f32>, 8>; // bv[kk * TN4 + h]: column group h of b at k + kk
      if (TRANS_B) {
        for (var h = 0u; h < TN4; h++) {
          let c0 = Bs[sb + (rowb[4u * h] ^ kc)];
          let c1 = Bs[sb + (rowb[4u * h + 1u] ^ kc)];
          let c2 = Bs[sb + (rowb[4u * h + 2u] ^ kc)];
          let c3 = Bs[sb + (rowb[4u * h + 3u] ^ kc)];
          bv[h] = vec4<f32>(c0.x, c1.x, c2.x, c3.x);
          bv[TN4 + h] = vec4<f32>(c0.y, c1.y, c2.y, c3.y);
          bv[2u * TN4 + h] = vec4<f32>(c0.z, c1.z, c2.z, c3.z);
          bv[3u * TN4 + h] = vec4<f32>(c0.w, c1.w, c2.w, c3.w);
        }
      } else {
        for (var kk = 0u; kk < 4u; kk++) {
          for (var h = 0u; h < TN4; h++) { bv[kk * TN4 + h] = Bs[sb + (4u * kc + kk) * (BN / 4u) + h * WGX + tx]; }
        }
      }
      for (var kk = 0u; kk < 4u; kk++) {
        for (var r = 0u; r < TM; r++) {
          let x = vec4<f32>(av[r][kk]);
          for (var h = 0u; h < TN4; h++) { acc[r * TN4 + h] = fma(x, bv[kk * TN4 + h], acc[r * TN4 + h]); }
        }
      }
    }

    if (more) {
      let next = (1u - stage);
      for (var i = 0u; i < A_LOADS; i++) {
        let v = lid + i * NT;
        if (v < A_TILE) { As[next * A_TILE + v] = ra[i]; }
      }
      for (var i = 0u; i < B_LOADS; i++) {
        let v = lid + i * NT;
        if (v < BK * BN / 4u) { Bs[next * B_TILE + b_slot(v)] = rb[i]; }
      }
    }
    workgroupBarrier();
  }

  for (var r = 0u; r < TM; r++) {
    let row = m0 + ty * TM + r;
    if (row >= p.M) { continue; }
    for (var h = 0u; h < TN4; h++) {
      for (var j = 0u; j < 4u; j++) {
        var col: u32;
        if (TRANS_B) { col = n0 + (4u * h + j) * WGX + tx; } else { col = n0 + (h * WGX + tx) * 4u + j; }
        if (col < p.N) {
          var v = acc[r * TN4 + h][j];
          if (HAS_BIAS) { v += f32(bias[col]); }
          out[row * p.N + col] = T(v);
        }
      }
    }
  }
}
