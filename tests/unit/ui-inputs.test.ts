/**
 * The generation panel's number fields refuse fractional counts (parseNumberInput), and a caption
 * with thousands of unknown words stays quick to edit (unknownHints lists and suggests for 12).
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { MAX_LISTED_UNKNOWN, suggest, unknownHints, unknownWords } from '../../src/state/vocab.ts';
import { parseNumberInput } from '../../src/ui/format.ts';

describe('parseNumberInput', () => {
  const steps = { min: 1, max: 200, integer: true, name: 'Steps' };
  it('whole-number fields refuse fractions with one line, and pass on clamped whole numbers', () => {
    expect(parseNumberInput('2.5', steps)).toEqual({ problem: 'Steps must be a whole number, not 2.5' });
    expect(parseNumberInput('1e-3', { ...steps, name: 'Top-k', min: 0, max: 16 })).toEqual({
      problem: 'Top-k must be a whole number, not 1e-3',
    });
    expect(parseNumberInput('12', steps)).toEqual({ value: 12 });
    expect(parseNumberInput('900', steps)).toEqual({ value: 200 });
    expect(parseNumberInput('', steps)).toBeNull();
    expect(parseNumberInput('-', steps)).toBeNull();
  });
  it('fractional fields take fractions', () => {
    expect(parseNumberInput('2.5', { min: 0, max: 20, integer: false, name: 'Guidance' })).toEqual({ value: 2.5 });
  });
});

describe('unknown words in a caption', () => {
  const file = JSON.parse(readFileSync('public/models/moc-base/vocab.json', 'utf8'));
  const vocab = { words: new Set<string>(file.words), rules: { split: file.split, lowercase: file.lowercase } };
  const text = Array.from({ length: 20_000 }, (_, i) => `qq${i.toString(36)}x`).join(' ');

  it('20,000 unknown words: 12 listed with suggestions, the rest counted, in well under a keystroke', () => {
    const t0 = performance.now();
    const h = unknownHints(text, vocab);
    const ms = performance.now() - t0;
    expect(h.listed).toHaveLength(MAX_LISTED_UNKNOWN);
    expect(h.more).toBe(20_000 - MAX_LISTED_UNKNOWN);
    expect(h.listed[0].word.word).toBe('qq0x');
    expect(h.listed[0].options).toEqual(suggest('qq0x', vocab.words));
    // what the field did before: a suggestion pass for every unknown word (measured for the record)
    const t1 = performance.now();
    for (const w of unknownWords(text, vocab).slice(0, 2000)) suggest(w.word, vocab.words);
    const before = ((performance.now() - t1) * 20_000) / 2000;
    console.log(
      `unknownHints on 20,000 unknown words: ${ms.toFixed(0)} ms; suggestions for all of them: ~${before.toFixed(0)} ms`,
    );
    expect(ms).toBeLessThan(before / 5);
  });
});
