/** Small hooks shared by the studio's components. */
import { useEffect, useMemo, useRef, useState } from 'react';
import { FPS } from '../state/board-ops.ts';
import { useStudio } from '../state/store.ts';
import type { Vocab } from '../state/vocab.ts';

/** The loaded model's vocabulary (its words as a set, its caption rules), or null before a model is loaded. */
export function useVocab(): Vocab | null {
  const words = useStudio((s) => s.model.info?.words);
  const rules = useStudio((s) => s.model.info?.captionRules);
  return useMemo(() => (words && rules ? { words: new Set(words), rules } : null), [words, rules]);
}

/** Frames per second of the loaded model (the storyboard's 8 fps before one is loaded). */
export function useFps(): number {
  return useStudio((s) => s.model.info?.fps ?? FPS);
}

/** Calls `fn(dtMs)` on every animation frame while `active`. */
export function useAnimationFrame(active: boolean, fn: (dtMs: number) => void): void {
  const ref = useRef(fn);
  ref.current = fn;
  useEffect(() => {
    if (!active) return;
    let raf = 0;
    let last = performance.now();
    const tick = (now: number): void => {
      ref.current(now - last);
      last = now;
      raf = requestAnimationFrame(tick);
    };
    raf = requestAnimationFrame(tick);
    return () => cancelAnimationFrame(raf);
  }, [active]);
}

/** Date.now(), updated every `everyMs` while `active` (a clock that ticks on screen). */
export function useNow(active: boolean, everyMs = 250): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    if (!active) return;
    setNow(Date.now());
    const id = setInterval(() => setNow(Date.now()), everyMs);
    return () => clearInterval(id);
  }, [active, everyMs]);
  return now;
}
