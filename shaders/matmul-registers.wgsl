// matmul-registers.wgsl — out[M,N] = a[M,K] · B + bias[N], with B = b[K,N], or b[N,K]ᵀ when
// TRANS_B; the same contract as matmul.wgsl, without workgroup memory or barriers. For WebGPU
// on the CPU (SwiftShader, see matmulConfig in src/engine/kernels/matmul.ts), where a barrier
// makes every invocation a coroutine, loops are not unrolled (so a dynamically indexed private
// array lives in memory) and a scalar load from a storage buffer costs far more than a multiply:
// every value here is a named register, every index static, and each loaded element is used by
// 16 multiply-adds. Accumulates in f32 whatever the storage type T.
//
// Bindings: @0 params {M, N, K, tiles_n, tiles}; @1 a: row-major [M,K]; @2 b: row-major [K,N]
// ([N,K] with TRANS_B); @3 bias [N] (bound to any buffer and never read unless HAS_BIAS);
// @4 out: row-major [M,N]. All scalar arrays.
//
// Geometry: one invocation per (4·RB)×(4·CB) tile of out (tiles in row-major order, tiles_n per
// row of tiles; a 1D grid of WG-invocation workgroups, grid2d). The tile is RB×CB 4×4 blocks,
// each a mat4x4 accumulator whose column r holds out row 4i + r, columns 4j .. 4j + 3. K is
// walked four at a time: block (i, j) += B(4 k × 4 columns) · A(4 k × 4 rows), as mat4x4
// products of matrices loaded element by element. Rows and columns past the edge are read
// clamped (valid addresses, results never stored); k past K reads a zero from a. Invocations
// past the last tile compute a clamped one and store nothing.
//
// Assumes (the wrapper checks): RB, CB ∈ {1, 2, 3, 4}. Blocks past RB×CB sit in branches on the
// override constants, which the compiler removes.

override WG: u32 = 16u;
override RB: u32 = 4u;
override CB: u32 = 4u;
override TRANS_B: bool = false;
override HAS_BIAS: bool = false;

struct Params { M: u32, N: u32, K: u32, tiles_n: u32, tiles: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<T>;
@group(0) @binding(2) var<storage, read> b: array<T>;
@group(0) @binding(3) var<storage, read> bias: array<T>;
@group(0) @binding(4) var<storage, read_write> out: array<T>;

const LANES = vec4<u32>(0u, 1u, 2u, 3u);

// Elements o + kk of a (o: a row's offset, kk: four k indices).
fn a_vec(o: u32, kk: vec4<u32>) -> vec4<f32> {
  return vec4<f32>(f32(a[o + kk.x]), f32(a[o + kk.y]), f32(a[o + kk.z]), f32(a[o + kk.w]));
}

// Elements o + kk of b.
fn b_vec(o: u32, kk: vec4<u32>) -> vec4<f32> {
  return vec4<f32>(f32(b[o + kk.x]), f32(b[o + kk.y]), f32(b[o + kk.z]), f32(b[o + kk.w]));
}

// A block: column r = a row ro[r] at k indices kk, times the k mask km.
fn a_block(ro: vec4<u32>, kk: vec4<u32>, km: vec4<f32>) -> mat4x4<f32> {
  return mat4x4<f32>(a_vec(ro.x, kk) * km, a_vec(ro.y, kk) * km, a_vec(ro.z, kk) * km, a_vec(ro.w, kk) * km);
}

// B block: column t = B row kk[t] at four columns. `bc` is what b_cols returned for them.
fn b_block(bc: vec4<u32>, kk: vec4<u32>) -> mat4x4<f32> {
  if (TRANS_B) { // b rows bc (offsets) at k indices kk, transposed
    return transpose(mat4x4<f32>(b_vec(bc.x, kk), b_vec(bc.y, kk), b_vec(bc.z, kk), b_vec(bc.w, kk)));
  }
  let n = kk * p.N;
  return mat4x4<f32>(b_vec(n.x, bc), b_vec(n.y, bc), b_vec(n.z, bc), b_vec(n.w, bc));
}

// Columns n .. n+3 of B, clamped: their row offsets in b with TRANS_B, else their indices.
fn b_cols(n: u32) -> vec4<u32> {
  let c = min(n + LANES, vec4<u32>(p.N - 1u));
  if (TRANS_B) { return c * p.K; }
  return c;
}

// Offsets in a of rows m .. m+3, clamped.
fn a_rows(m: u32) -> vec4<u32> {
  return min(m + LANES, vec4<u32>(p.M - 1u)) * p.K;
}

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) lid: u32, grid: Grid) {
  let id = flat_index(lid, grid, WG);
  let t = min(id, p.tiles - 1u);
  let m0 = (t / p.tiles_n) * 4u * RB;
  let n0 = (t % p.tiles_n) * 4u * CB;
  let ra0 = a_rows(m0);
  let ra1 = a_rows(m0 + 4u);
  let ra2 = a_rows(m0 + 8u);
  let ra3 = a_rows(m0 + 12u);
  let bc0 = b_cols(n0);
  let bc1 = b_cols(n0 + 4u);
  let bc2 = b_cols(n0 + 8u);
  let bc3 = b_cols(n0 + 12u);

  var c00 = mat4x4<f32>(); var c01 = mat4x4<f32>(); var c02 = mat4x4<f32>(); var c03 = mat4x4<f32>();
  var c10 = mat4x4<f32>(); var c11 = mat4x4<f32>(); var c12 = mat4x4<f32>(); var c13 = mat4x4<f32>();
  var c20 = mat4x4<f32>(); var c21 = mat4x4<f32>(); var c22 = mat4x4<f32>(); var c23 = mat4x4<f32>();
  var c30 = mat4x4<f32>(); var c31 = mat4x4<f32>(); var c32 = mat4x4<f32>(); var c33 = mat4x4<f32>();

  let last_k = vec4<u32>(p.K - 1u);
  for (var k = 0u; k < p.K; k += 4u) {
    let kk = min(k + LANES, last_k);
    let km = select(vec4<f32>(0.0), vec4<f32>(1.0), k + LANES < vec4<u32>(p.K));
    let b0 = b_block(bc0, kk);
    var b1: mat4x4<f32>;
    var b2: mat4x4<f32>;
    var b3: mat4x4<f32>;
    if (CB > 1u) { b1 = b_block(bc1, kk); }
    if (CB > 2u) { b2 = b_block(bc2, kk); }
    if (CB > 3u) { b3 = b_block(bc3, kk); }

    accumulate(&c00, &c01, &c02, &c03, a_block(ra0, kk, km), b0, b1, b2, b3);
    if (RB > 1u) { accumulate(&c10, &c11, &c12, &c13, a_block(ra1, kk, km), b0, b1, b2, b3); }
    if (RB > 2u) { accumulate(&c20, &c21, &c22, &c23, a_block(ra2, kk, km), b0, b1, b2, b3); }
    if (RB > 3u) { accumulate(&c30, &c31, &c32, &c33, a_block(ra3, kk, km), b0, b1, b2, b3); }
  }

  if (id >= p.tiles) { return; }
  store(m0, n0, c00, c01, c02, c03);
  if (RB > 1u) { store(m0 + 4u, n0, c10, c11, c12, c13); }
  if (RB > 2u) { store(m0 + 8u, n0, c20, c21, c22, c23); }
  if (RB > 3u) { store(m0 + 12u, n0, c30, c31, c32, c33); }
}

// One row block of accumulators += the B blocks (those of the first CB) · its A block.
fn accumulate(c0: ptr<function, mat4x4<f32>>, c1: ptr<function, mat4x4<f32>>, c2: ptr<function, mat4x4<f32>>,
              c3: ptr<function, mat4x4<f32>>, a: mat4x4<f32>, b0: mat4x4<f32>, b1: mat4x4<f32>, b2: mat4x4<f32>,
              b3: mat4x4<f32>) {
  *c0 += b0 * a;
  if (CB > 1u) { *c1 += b1 * a; }
  if (CB > 2u) { *c2 += b2 * a; }
  if (CB > 3u) { *c3 += b3 * a; }
}

// Writes row block m .. m+3 (a column of blocks c0 .. c3 from column n), skipping past the edges.
fn store(m: u32, n: u32, c0: mat4x4<f32>, c1: mat4x4<f32>, c2: mat4x4<f32>, c3: mat4x4<f32>) {
  let blocks = array<mat4x4<f32>, 4>(c0, c1, c2, c3);
  for (var j = 0u; j < CB; j++) {
    for (var r = 0u; r < 4u; r++) {
      let row = m + r;
      if (row >= p.M) { break; }
      for (var q = 0u; q < 4u; q++) {
        let col = n + 4u * j + q;
        if (col < p.N) {
          var v = blocks[j][r][q];
          if (HAS_BIAS) { v += f32(bias[col]); }
          out[row * p.N + col] = T(v);
        }
      }
    }
  }
}
