// patchify.wgsl — frames [F, C, H, W] (channels first) ↔ patch tokens [F·(H/P)·(W/P), C·P·P].
//
// Layout: token t = (f·(H/P) + gy)·(W/P) + gx (frames in order, patches row-major in a frame),
// feature k = (c·P + py)·P + px, and tokens[t, k] = frames[f, c, gy·P + py, gx·P + px].
// Bindings: @0 params {frames, channels, height, width, size = P}, @1 src: array<T>,
// @2 dst: array<T>; both hold F·C·H·W elements.
// Specialised by `override DIR`: 0 patchify (src frames, dst tokens), 1 unpatchify (src tokens,
// dst frames). Either way one invocation gathers one element of dst (a pure copy, no
// arithmetic), WG per workgroup, a 2D grid. Assumes H and W are multiples of P.

override DIR: u32 = 0u;
override WG: u32 = 256u;

struct Params { frames: u32, channels: u32, height: u32, width: u32, size: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<T>;
@group(0) @binding(2) var<storage, read_write> dst: array<T>;

// The element at frame f, channel c, row y, column x as a flat index of the frames and of the tokens.
fn frame_index(f: u32, c: u32, y: u32, x: u32) -> u32 {
  return ((f * p.channels + c) * p.height + y) * p.width + x;
}

fn token_index(f: u32, c: u32, y: u32, x: u32) -> u32 {
  let P = p.size;
  let t = (f * (p.height / P) + y / P) * (p.width / P) + x / P;
  return t * (p.channels * P * P) + (c * P + y % P) * P + x % P;
}

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) lid: u32, grid: Grid) {
  let i = flat_index(lid, grid, WG);
  if (i >= p.frames * p.channels * p.height * p.width) { return; }
  let P = p.size;
  if (DIR == 0u) { // i walks the tokens: token t, feature k = (c·P + py)·P + px
    let features = p.channels * P * P;
    let t = i / features;
    let k = i % features;
    let per_row = p.width / P;
    let per_frame = (p.height / P) * per_row;
    let y = (t % per_frame) / per_row * P + (k % (P * P)) / P;
    let x = (t % per_row) * P + k % P;
    dst[i] = src[frame_index(t / per_frame, k / (P * P), y, x)];
  } else { // i walks the frames: i = ((f·C + c)·H + y)·W + x
    let x = i % p.width;
    let y = (i / p.width) % p.height;
    let c = (i / (p.width * p.height)) % p.channels;
    let f = i / (p.width * p.height * p.channels);
    dst[i] = src[token_index(f, c, y, x)];
  }
}
