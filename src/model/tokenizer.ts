/**
 * The word-level caption tokenizer (train/vocab.py), read from a model folder's vocab.json:
 *   {"version": 1, "pad": "<pad>", "unk": "<unk>", "lowercase": true, "split": REGEX, "words": [...]}
 * Captions are lower-cased and split by the regex (words, '.' and ','; "close-up" is one word),
 * then padded with `<pad>` (id 0) to the model's caption length. Unknown words are never dropped
 * silently: `encode` returns them, `encodeStrict` refuses them naming the vocabulary.
 */
import { z } from './zod.ts';
import { InputError } from './errors.ts';

/** Captions longer than this are refused before they are split (bounds the split's work). */
export const MAX_CAPTION_CHARS = 4096;
/** Unknown words named in one message; the rest are counted. */
const MAX_LISTED = 8;

/** At most `n` characters of `text`, with `…` where it was cut (for quoting input in messages). */
export function clip(text: string, n = 60): string {
  const chars = [...text];
  return chars.length <= n ? text : `${chars.slice(0, n).join('')}…`;
}

/**
 * Why a vocab.json `split` pattern is outside the subset this tokenizer runs, or null when it is
 * inside. The subset cannot backtrack catastrophically: a top-level alternation of at most 8
 * branches, each a sequence of single atoms (a character, an escape such as \s or \., `.`, or a
 * character class) with at most one unbounded quantifier (+, *, {n,}) and four quantifiers in all;
 * no groups, backreferences or lookarounds (with them, `(a+)+$` takes exponential time).
 * train/vocab.py's pattern, `close-up|[^\s.,]+|[.,]`, is inside.
 */
export function splitPatternProblem(pattern: string): string | null {
  if (pattern.length > 256) return `it is ${pattern.length} characters (at most 256)`;
  const branches = 1 + [...pattern.matchAll(/\\.|\[(?:\\.|[^\]\\])*\]|\|/gsu)].filter((m) => m[0] === '|').length;
  if (branches > 8) return `it has ${branches} alternatives (at most 8)`;
  let quantifiers = 0;
  let unbounded = 0;
  let atom = false; // the previous token can take a quantifier
  for (let i = 0; i < pattern.length;) {
    const c = pattern[i];
    if (c === '|') {
      [quantifiers, unbounded, atom] = [0, 0, false];
      i++;
    } else if (c === '(' || c === ')') {
      return `groups are not supported (at ${i})`;
    } else if (c === '\\') {
      const e = pattern[i + 1] ?? '';
      if (/[1-9k]/u.test(e)) return `the escape \\${e} is not supported (at ${i})`;
      atom = e !== 'b';
      i += 2;
    } else if (c === '[') {
      const m = /^\[(?:\\.|[^\]\\])*\]/su.exec(pattern.slice(i));
      if (!m) return `a character class is not closed (at ${i})`;
      atom = true;
      i += m[0].length;
    } else if ('*+?{'.includes(c)) {
      const m = /^(?:[*+?]|\{(\d+)(,(\d*))?\})\??/u.exec(pattern.slice(i));
      if (!m || !atom) return `a quantifier must follow a character or a class (at ${i})`;
      quantifiers++;
      if (c === '*' || c === '+' || (m[2] !== undefined && (m[3] === '' || Number(m[3]) > 16))) unbounded++;
      if (unbounded > 1) return `an alternative has two unbounded quantifiers (at ${i})`;
      if (quantifiers > 4) return `an alternative has more than four quantifiers (at ${i})`;
      atom = false;
      i += m[0].length;
    } else {
      atom = c !== '^' && c !== '$';
      i++;
    }
  }
  return null;
}

const vocabSchema = z.object({
  version: z.literal(1),
  pad: z.string(),
  unk: z.string(),
  lowercase: z.boolean(),
  split: z.string().min(1),
  words: z.array(z.string()).min(2),
});

export interface Encoded {
  /** Exactly `length` ids, padded with the pad id. */
  ids: Int32Array;
  /** Words not in the vocabulary, in order of appearance (each encoded as `<unk>`). */
  unknown: string[];
  /** Real (non-pad) tokens. */
  length: number;
}

/** A caption the model cannot take: unknown words or more tokens than it holds. */
export class CaptionError extends InputError {
  constructor(message: string) {
    super(message);
    this.name = 'CaptionError';
  }
}

export class Tokenizer {
  readonly padId: number;
  readonly unkId: number;
  private readonly index: Map<string, number>;
  private readonly re: RegExp;

  private constructor(
    readonly words: readonly string[],
    pad: string,
    unk: string,
    /** vocab.json's `lowercase` and `split` (the regex source): how captions become words. */
    readonly lowercase: boolean,
    readonly splitPattern: string,
    /** Names the vocabulary in messages, e.g. the model's name. */
    readonly source: string,
  ) {
    this.index = new Map(words.map((w, i) => [w, i]));
    if (this.index.size !== words.length) throw new InputError(`${source}: vocab.json lists a word twice`);
    const p = this.index.get(pad);
    const u = this.index.get(unk);
    if (p === undefined || u === undefined)
      throw new InputError(`${source}: vocab.json's words lack the pad or unk token`);
    this.padId = p;
    this.unkId = u;
    const problem = splitPatternProblem(splitPattern);
    if (problem)
      throw new InputError(
        `${source}: vocab.json's split pattern ${JSON.stringify(clip(splitPattern))} is not supported: ${problem}`,
      );
    try {
      this.re = new RegExp(splitPattern, 'gu');
    } catch (e) {
      throw new InputError(
        `${source}: vocab.json's split pattern is not a valid regular expression (${(e as Error).message})`,
      );
    }
  }

  /**
   * @param value parsed vocab.json. @param source names it in messages (e.g. "model 'tiny'").
   * @throws InputError for a malformed vocabulary.
   */
  static fromJson(value: unknown, source = 'vocab.json'): Tokenizer {
    const r = vocabSchema.safeParse(value);
    if (!r.success) {
      const issue = r.error.issues[0];
      throw new InputError(`${source}: vocab.json ${issue.path.join('.') || ''}: ${issue.message}`);
    }
    const v = r.data;
    return new Tokenizer(v.words, v.pad, v.unk, v.lowercase, v.split, source);
  }

  get size(): number {
    return this.words.length;
  }

  /** The words of a caption (lower-cased, split as train/vocab.py's split_words). */
  split(text: string): string[] {
    if (text.length > MAX_CAPTION_CHARS)
      throw new CaptionError(
        `caption is ${text.length} characters, the limit is ${MAX_CAPTION_CHARS}: ${JSON.stringify(clip(text))}`,
      );
    return (this.lowercase ? text.toLowerCase() : text).match(this.re) ?? [];
  }

  /**
   * Tokenizes into exactly `length` ids; unknown words become `<unk>` and are listed.
   * @throws CaptionError when the caption has more than `length` tokens (naming the limit).
   */
  encode(text: string, length: number): Encoded {
    const words = this.split(text);
    if (words.length > length) {
      throw new CaptionError(
        `caption has ${words.length} tokens, the limit is ${length}: ${JSON.stringify(clip(text))}`,
      );
    }
    const ids = new Int32Array(length).fill(this.padId);
    const unknown: string[] = [];
    words.forEach((w, i) => {
      const id = this.index.get(w);
      if (id === undefined) unknown.push(w);
      ids[i] = id ?? this.unkId;
    });
    return { ids, unknown, length: words.length };
  }

  /**
   * As `encode`, but unknown words are an error.
   * @param what names the caption in messages, e.g. "shot 2's caption".
   * @throws CaptionError for unknown words (listing them and the vocabulary) or a caption too long.
   */
  encodeStrict(text: string, length: number, what = 'caption'): Int32Array {
    let enc: Encoded;
    try {
      enc = this.encode(text, length);
    } catch (e) {
      throw new CaptionError(`${what}: ${(e as Error).message}`);
    }
    if (enc.unknown.length) {
      const words = [...new Set(enc.unknown)];
      const more = words.length > MAX_LISTED ? ` and ${words.length - MAX_LISTED} more` : '';
      const list =
        words
          .slice(0, MAX_LISTED)
          .map((w) => `'${clip(w, 40)}'`)
          .join(', ') + more;
      throw new CaptionError(
        `${what}: ${enc.unknown.length === 1 ? 'word' : 'words'} ${list} not in the vocabulary of ${this.source} (${this.size} words)`,
      );
    }
    return enc.ids;
  }
}
