/**
 * PNG and animated PNG (APNG) encoders for RGBA8 frames, on node:zlib (deflate, crc32).
 * PNG: signature, IHDR (8-bit RGBA), IDAT (filter 0 per row), IEND. APNG adds acTL after IHDR and
 * an fcTL before every frame; frame 0's pixels are the IDAT (the still image viewers without
 * APNG show), later frames are fdAT chunks; fcTL and fdAT share one sequence counter.
 */
import { crc32, deflateSync } from 'node:zlib';

const SIGNATURE = Uint8Array.from([137, 80, 78, 71, 13, 10, 26, 10]);

function chunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, data.length);
  out.set(new TextEncoder().encode(type), 4);
  out.set(data, 8);
  dv.setUint32(8 + data.length, crc32(out.subarray(4, 8 + data.length)));
  return out;
}

function u32s(...v: number[]): Uint8Array {
  const out = new Uint8Array(4 * v.length);
  v.forEach((x, i) => new DataView(out.buffer).setUint32(4 * i, x));
  return out;
}

function ihdr(width: number, height: number): Uint8Array {
  const d = new Uint8Array(13);
  const dv = new DataView(d.buffer);
  dv.setUint32(0, width);
  dv.setUint32(4, height);
  d.set([8, 6, 0, 0, 0], 8); // 8 bits, RGBA, deflate, adaptive filtering, no interlace
  return chunk('IHDR', d);
}

/** zlib stream of the rows, each prefixed with filter type 0. */
function pixels(rgba: ArrayLike<number>, width: number, height: number): Uint8Array {
  const stride = width * 4;
  if (rgba.length !== stride * height)
    throw new RangeError(`png: ${rgba.length} bytes are not ${width}×${height} RGBA`);
  const raw = new Uint8Array((stride + 1) * height);
  for (let y = 0; y < height; y++) {
    raw[y * (stride + 1)] = 0;
    for (let i = 0; i < stride; i++) raw[y * (stride + 1) + 1 + i] = rgba[y * stride + i];
  }
  return deflateSync(raw, { level: 9 });
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** A still PNG of one RGBA8 image [height, width, 4]. */
export function encodePng(rgba: ArrayLike<number>, width: number, height: number): Uint8Array {
  return concat([
    SIGNATURE,
    ihdr(width, height),
    chunk('IDAT', pixels(rgba, width, height)),
    chunk('IEND', new Uint8Array(0)),
  ]);
}

/** An APNG looping over `frames` (RGBA8 [height, width, 4] each) at `fps`. */
export function encodeApng(frames: ArrayLike<number>[], width: number, height: number, fps: number): Uint8Array {
  if (frames.length === 0) throw new RangeError('apng: no frames');
  const parts = [SIGNATURE, ihdr(width, height), chunk('acTL', u32s(frames.length, 0))];
  const delay = Math.max(1, Math.round(fps));
  let seq = 0;
  frames.forEach((f, i) => {
    const fc = new Uint8Array(26);
    fc.set(u32s(seq++, width, height, 0, 0), 0);
    new DataView(fc.buffer).setUint16(20, 1); // delay = 1 / fps seconds
    new DataView(fc.buffer).setUint16(22, delay);
    fc[24] = 0; // dispose: none
    fc[25] = 0; // blend: source
    parts.push(chunk('fcTL', fc));
    const data = pixels(f, width, height);
    if (i === 0) parts.push(chunk('IDAT', data));
    else parts.push(chunk('fdAT', concat([u32s(seq++), data])));
  });
  parts.push(chunk('IEND', new Uint8Array(0)));
  return concat(parts);
}

/** Nearest-neighbour upscale of an RGBA8 image by an integer factor. */
export function upscale(rgba: ArrayLike<number>, width: number, height: number, factor: number): Uint8Array {
  const W = width * factor;
  const out = new Uint8Array(W * height * factor * 4);
  for (let y = 0; y < height * factor; y++) {
    for (let x = 0; x < W; x++) {
      const s = ((Math.floor(y / factor) * width + Math.floor(x / factor)) * 4) | 0;
      out.set([rgba[s], rgba[s + 1], rgba[s + 2], rgba[s + 3]], (y * W + x) * 4);
    }
  }
  return out;
}
