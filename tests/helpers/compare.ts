/**
 * Tolerance checks in the style of llm.c's validate_result: |got − ref| ≤ atol + rtol·|ref| for
 * every element; on failure the error lists the first mismatches and the worst index. NaN in
 * `got` (e.g. an unwritten, poisoned element) always fails.
 */
export interface Tolerance {
  atol: number;
  rtol: number;
}

export function assertClose(name: string, got: ArrayLike<number>, ref: ArrayLike<number>, tol: Tolerance): void {
  if (got.length !== ref.length) throw new Error(`${name}: length ${got.length} != reference ${ref.length}`);
  const bad: string[] = [];
  let nBad = 0;
  let worst = -1;
  let worstExcess = -Infinity;
  for (let i = 0; i < ref.length; i++) {
    const g = got[i];
    const r = ref[i];
    const err = Math.abs(g - r);
    const lim = tol.atol + tol.rtol * Math.abs(r);
    const excess = Number.isNaN(err) ? Infinity : err - lim;
    if (excess > worstExcess) {
      worstExcess = excess;
      worst = i;
    }
    if (!(err <= lim)) {
      nBad++;
      if (bad.length < 5) bad.push(`[${i}] got ${g} want ${r}`);
    }
  }
  if (nBad > 0) {
    throw new Error(
      `${name}: ${nBad}/${ref.length} elements out of tolerance (atol ${tol.atol}, rtol ${tol.rtol}); first: ${bad.join(', ')}; ` +
        `worst [${worst}] got ${got[worst]} want ${ref[worst]}`,
    );
  }
}

export function assertEqualInts(name: string, got: ArrayLike<number>, ref: ArrayLike<number>): void {
  if (got.length !== ref.length) throw new Error(`${name}: length ${got.length} != reference ${ref.length}`);
  const bad: string[] = [];
  let nBad = 0;
  for (let i = 0; i < ref.length; i++) {
    if (got[i] !== ref[i]) {
      nBad++;
      if (bad.length < 8) bad.push(`[${i}] got ${got[i]} want ${ref[i]}`);
    }
  }
  if (nBad > 0) throw new Error(`${name}: ${nBad}/${ref.length} integers differ; first: ${bad.join(', ')}`);
}

/** f32 → f16 bits (round to nearest even) and back, for f16-path tests. */
export function toHalf(x: Float32Array): Uint16Array {
  const out = new Uint16Array(x.length);
  const f = new Float32Array(1);
  const u = new Uint32Array(f.buffer);
  for (let i = 0; i < x.length; i++) {
    f[0] = x[i];
    const b = u[0];
    const sign = (b >>> 16) & 0x8000;
    const e = ((b >>> 23) & 0xff) - 127 + 15;
    let m = b & 0x7fffff;
    if (e >= 31) out[i] = sign | 0x7c00;
    else if (e <= 0) {
      if (e < -10) out[i] = sign;
      else {
        m = (m | 0x800000) >> (1 - e);
        out[i] = sign | ((m + 0x1000) >> 13);
      }
    } else {
      const h = sign | (e << 10) | (m >> 13);
      const rest = m & 0x1fff;
      out[i] = rest > 0x1000 || (rest === 0x1000 && h & 1) ? h + 1 : h;
    }
  }
  return out;
}

export function fromHalf(h: Uint16Array): Float32Array {
  const out = new Float32Array(h.length);
  for (let i = 0; i < h.length; i++) {
    const s = h[i] & 0x8000 ? -1 : 1;
    const e = (h[i] >> 10) & 0x1f;
    const m = h[i] & 0x3ff;
    out[i] = e === 0 ? s * m * 2 ** -24 : e === 31 ? (m ? NaN : s * Infinity) : s * (1 + m / 1024) * 2 ** (e - 15);
  }
  return out;
}
