/**
 * The word-level caption tokenizer (train/vocab.py), read from a model folder's vocab.json:
 *   {"version": 1, "pad": "<pad>", "unk": "<unk>", "lowercase": true, "split": REGEX, "words": [...]}
 * Captions are lower-cased and split by the regex (words, '.' and ','; "close-up" is one word),
 * then padded with `<pad>` (id 0) to the model's caption length. Unknown words are never dropped
 * silently: `encode` returns them, `encodeStrict` refuses them naming the vocabulary.
 */
import { z } from './zod.ts';
import { InputError } from './errors.ts';

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
    if (p === undefined || u === undefined) throw new InputError(`${source}: vocab.json's words lack the pad or unk token`);
    this.padId = p;
    this.unkId = u;
    try {
      this.re = new RegExp(splitPattern, 'gu');
    } catch (e) {
      throw new InputError(`${source}: vocab.json's split pattern is not a valid regular expression (${(e as Error).message})`);
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
    return (this.lowercase ? text.toLowerCase() : text).match(this.re) ?? [];
  }

  /**
   * Tokenizes into exactly `length` ids; unknown words become `<unk>` and are listed.
   * @throws CaptionError when the caption has more than `length` tokens (naming the limit).
   */
  encode(text: string, length: number): Encoded {
    const words = this.split(text);
    if (words.length > length) {
      throw new CaptionError(`caption has ${words.length} tokens, the limit is ${length}: ${JSON.stringify(text)}`);
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
      const list = [...new Set(enc.unknown)].map((w) => `'${w}'`).join(', ');
      throw new CaptionError(`${what}: ${enc.unknown.length === 1 ? 'word' : 'words'} ${list} not in the vocabulary of ${this.source} (${this.size} words)`);
    }
    return enc.ids;
  }
}
