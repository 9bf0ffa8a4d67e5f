/** Small display formatters shared by the components. */

/** 0.4321 → "0.43 ms", 41.7 → "42 ms". */
export function formatMs(ms: number): string {
  return ms < 10 ? `${ms.toFixed(2)} ms` : `${Math.round(ms)} ms`;
}

/** 0 → "0", 1.2e-7 → "1.2e-7". */
export function formatError(x: number): string {
  if (x === 0) return '0';
  if (!Number.isFinite(x)) return '∞';
  return x.toExponential(1).replace('e-', 'e−');
}

/** 12345 → "12.3 s", 83000 → "1 min 23 s", 400 → "0.4 s". */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms)) return '—';
  const s = ms / 1000;
  if (s < 60) return `${s < 10 ? s.toFixed(1) : Math.round(s)} s`;
  const m = Math.floor(s / 60);
  return `${m} min ${Math.round(s - m * 60)} s`;
}

/** Frame 10 at 8 fps → "0:01.25". */
export function formatTimecode(frame: number, fps: number): string {
  const t = frame / fps;
  const m = Math.floor(t / 60);
  const s = t - m * 60;
  return `${m}:${s.toFixed(2).padStart(5, '0')}`;
}

/** 0.6234 → "62%". */
export function formatPercent(x: number): string {
  return `${Math.round(x * 100)}%`;
}

/** 2.3e12 → "2.3 TFLOP", 4.1e8 → "410 MFLOP". */
export function formatFlops(x: number): string {
  const units = ['FLOP', 'kFLOP', 'MFLOP', 'GFLOP', 'TFLOP', 'PFLOP'];
  let v = x;
  let u = 0;
  while (v >= 1000 && u < units.length - 1) {
    v /= 1000;
    u++;
  }
  return `${v < 10 ? v.toFixed(1) : Math.round(v)} ${units[u]}`;
}

/**
 * What a number field's text means: a value clamped into [min, max], or a one-line problem
 * (a fractional value where only whole numbers make sense: steps, top-k, chunk frames), or
 * nothing while the text is empty or half-typed.
 */
export function parseNumberInput(
  text: string,
  { min, max, integer, name }: { min: number; max: number; integer: boolean; name: string },
): { value: number } | { problem: string } | null {
  const v = Number(text);
  if (text.trim() === '' || !Number.isFinite(v)) return null;
  if (integer && !Number.isInteger(v))
    return { problem: `${name} must be a whole number, not ${text.trim().slice(0, 20)}` };
  return { value: Math.min(max, Math.max(min, v)) };
}
