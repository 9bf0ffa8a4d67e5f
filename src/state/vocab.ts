/**
 * Caption words against the model's vocabulary: which words the model does not know, and which
 * known words are closest to them. Splitting follows the loaded model's vocab.json (`lowercase`,
 * `split`), as its tokenizer (src/model/tokenizer.ts) and train/vocab.py do.
 */
import type { CaptionRules } from '../model/api.ts';

/** The loaded model's vocabulary as the caption field uses it: its words and its caption rules. */
export interface Vocab {
  words: ReadonlySet<string>;
  rules: CaptionRules;
}

/** One word of a caption with its place in the text (for highlighting). */
export interface CaptionWord {
  word: string;
  /** Offset of the word in the original text and its length there. */
  start: number;
  end: number;
}

/** The words of `text` under the model's `rules` (lower-cased when they say so), with their offsets. */
export function splitCaption(text: string, rules: CaptionRules): CaptionWord[] {
  const out: CaptionWord[] = [];
  const src = rules.lowercase ? text.toLowerCase() : text; // same length for the characters a caption uses
  for (const m of src.matchAll(new RegExp(rules.split, 'gu'))) {
    out.push({ word: m[0], start: m.index, end: m.index + m[0].length });
  }
  return out;
}

/** The words of `text` that `vocab` lacks, in order, each once. */
export function unknownWords(text: string, vocab: Vocab): CaptionWord[] {
  const seen = new Set<string>();
  return splitCaption(text, vocab.rules).filter((w) => {
    if (vocab.words.has(w.word) || seen.has(w.word)) return false;
    seen.add(w.word);
    return true;
  });
}

/** Number of tokens the tokenizer makes of `text` (for the caption length limit). */
export function tokenCount(text: string, rules: CaptionRules): number {
  return splitCaption(text, rules).length;
}

/**
 * Up to `n` vocabulary words nearest to `word` (edit distance, ties by shared prefix, then
 * alphabetical), skipping special tokens such as `<pad>` and punctuation; only words within
 * a distance of about half their length are offered.
 */
export function suggest(word: string, vocab: Iterable<string>, n = 3): string[] {
  const w = word.toLowerCase();
  const scored: Array<{ v: string; d: number; p: number }> = [];
  for (const v of vocab) {
    if (v.startsWith('<') || v === '.' || v === ',') continue;
    const d = editDistance(w, v);
    if (d > Math.max(2, Math.ceil(Math.max(w.length, v.length) / 2))) continue;
    scored.push({ v, d, p: sharedPrefix(w, v) });
  }
  scored.sort((a, b) => a.d - b.d || b.p - a.p || a.v.localeCompare(b.v));
  return scored.slice(0, n).map((s) => s.v);
}

/** Levenshtein distance (insert, delete, substitute, each 1). */
export function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length];
}

function sharedPrefix(a: string, b: string): number {
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return i;
}

/** `text` with the word at [start, end) replaced by `word` (keeps a leading capital). */
export function replaceWord(text: string, at: CaptionWord, word: string): string {
  const old = text.slice(at.start, at.end);
  const cased = old[0] && old[0] !== old[0].toLowerCase() ? word[0].toUpperCase() + word.slice(1) : word;
  return text.slice(0, at.start) + cased + text.slice(at.end);
}
