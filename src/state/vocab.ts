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

/** Unknown words listed (with suggestions) under a caption; the rest are counted. */
export const MAX_LISTED_UNKNOWN = 12;

/**
 * The unknown words to list under a caption, each with up to 3 nearest known words, and how
 * many more there are. Suggestions cost a pass over the vocabulary per word, so only the first
 * MAX_LISTED_UNKNOWN get them: 20,000 unknown words made every keystroke take 1.1 s.
 */
export function unknownHints(
  text: string,
  vocab: Vocab,
): { listed: Array<{ word: CaptionWord; options: string[] }>; more: number } {
  const unknown = unknownWords(text, vocab);
  const listed = unknown
    .slice(0, MAX_LISTED_UNKNOWN)
    .map((word) => ({ word, options: suggest(word.word, vocab.words) }));
  return { listed, more: unknown.length - listed.length };
}

/** Number of tokens the tokenizer makes of `text` (for the caption length limit). */
export function tokenCount(text: string, rules: CaptionRules): number {
  return splitCaption(text, rules).length;
}

/**
 * Everyday words and the caption words that mean about the same (the shipped models' world:
 * shapes, colours, motions, places, framing). A word the model lacks is offered these first.
 */
const MEANINGS: Record<string, readonly string[]> = {
  spins: ['spin', 'spinning', 'rotates', 'rotate', 'rotating', 'turns', 'turn', 'turning', 'twirls', 'whirls'],
  bounces: ['bounce', 'bouncing', 'jumps', 'jump', 'jumping', 'hops', 'hop', 'leaps', 'leap', 'bobs'],
  moves: [
    'move',
    'moving',
    'walks',
    'walk',
    'runs',
    'run',
    'goes',
    'travels',
    'slides',
    'glides',
    'drifts',
    'flies',
    'rolls',
  ],
  grows: ['grow', 'growing', 'expands', 'expand', 'swells', 'enlarges', 'bigger', 'inflates', 'scales'],
  stays: [
    'stay',
    'waits',
    'wait',
    'sits',
    'sit',
    'rests',
    'rest',
    'stands',
    'stand',
    'still',
    'idles',
    'remains',
    'stops',
  ],
  left: ['west', 'leftward', 'leftwards'],
  right: ['east', 'rightward', 'rightwards'],
  meadow: ['field', 'grass', 'grassland', 'park', 'garden', 'hill', 'hills', 'prairie', 'lawn', 'countryside'],
  beach: ['sea', 'ocean', 'shore', 'coast', 'seaside', 'sand', 'waves', 'lake'],
  desert: ['dunes', 'dune', 'sahara', 'canyon', 'dry', 'arid'],
  forest: ['woods', 'wood', 'trees', 'tree', 'jungle', 'woodland'],
  city: ['town', 'street', 'streets', 'buildings', 'urban', 'downtown', 'village'],
  snow: ['snowy', 'winter', 'ice', 'icy', 'frozen', 'arctic', 'mountains', 'mountain'],
  wide: ['far', 'distant', 'long', 'establishing', 'panorama', 'overview'],
  'close-up': ['closeup', 'close', 'near', 'zoom', 'zoomed', 'detail', 'tight'],
  red: ['crimson', 'scarlet', 'maroon'],
  orange: ['amber', 'tangerine'],
  yellow: ['gold', 'golden', 'lemon'],
  green: ['lime', 'emerald', 'olive'],
  blue: ['navy', 'azure', 'cyan', 'teal', 'turquoise'],
  purple: ['violet', 'lilac', 'magenta', 'lavender'],
  pink: ['rose', 'salmon'],
  white: ['grey', 'gray', 'silver'],
  circle: ['ball', 'round', 'dot', 'ring', 'disc', 'disk', 'sphere', 'orb'],
  square: ['box', 'block', 'cube', 'rectangle', 'tile'],
  triangle: ['pyramid', 'cone', 'wedge'],
  star: ['stars', 'sparkle'],
  diamond: ['rhombus', 'gem', 'lozenge'],
  cross: ['plus', 'x'],
  character: ['person', 'figure', 'hero', 'thing', 'object', 'shape', 'creature', 'actor', 'player'],
  nobody: ['none', 'nothing', 'empty', 'noone', 'no-one'],
  '1': ['one', 'first'],
  '2': ['two', 'second'],
  '3': ['three', 'third'],
};

/** Caption words of `vocab` that mean about what `word` means (MEANINGS). */
export function byMeaning(word: string, vocab: Iterable<string>): string[] {
  const w = word.toLowerCase();
  const known = new Set(vocab);
  return Object.entries(MEANINGS)
    .filter(([v, alike]) => known.has(v) && alike.includes(w))
    .map(([v]) => v);
}

/**
 * Up to `n` vocabulary words for `word`: first those that mean about the same (MEANINGS), then
 * the nearest by spelling (edit distance, ties by shared prefix, then alphabetical), skipping
 * special tokens such as `<pad>` and punctuation; only words within a distance of about half
 * their length are offered by spelling.
 */
export function suggest(word: string, vocab: Iterable<string>, n = 3): string[] {
  const list = [...vocab];
  const meant = byMeaning(word, list);
  return [...new Set([...meant, ...bySpelling(word, list)])].slice(0, n);
}

function bySpelling(word: string, vocab: Iterable<string>): string[] {
  const w = word.toLowerCase();
  const scored: Array<{ v: string; d: number; p: number }> = [];
  for (const v of vocab) {
    if (v.startsWith('<') || v === '.' || v === ',') continue;
    const d = editDistance(w, v);
    if (d > Math.max(2, Math.ceil(Math.max(w.length, v.length) / 2))) continue;
    scored.push({ v, d, p: sharedPrefix(w, v) });
  }
  scored.sort((a, b) => a.d - b.d || b.p - a.p || a.v.localeCompare(b.v));
  return scored.map((s) => s.v);
}

/** The words a caption can use (no special tokens or punctuation), for showing the vocabulary. */
export function captionWords(vocab: Iterable<string>): string[] {
  return [...vocab].filter((v) => !v.startsWith('<') && v !== '.' && v !== ',');
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
