/** Caption words against the vocabulary: splitting like train/vocab.py, unknown words, suggestions. */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  byMeaning,
  captionWords,
  editDistance,
  replaceWord,
  splitCaption,
  suggest,
  tokenCount,
  unknownWords,
} from '../../src/state/vocab.ts';

// The caption rules of the shipped model's vocab.json (what the page gets with the loaded model).
const RULES = JSON.parse(readFileSync('public/models/moc-base/vocab.json', 'utf8')) as {
  split: string;
  lowercase: boolean;
};
const VOCAB = new Set([
  '<pad>',
  '<unk>',
  'character',
  'is',
  'a',
  'red',
  'star',
  '1',
  '2',
  'bounces',
  'in',
  'the',
  'meadow',
  ',',
  '.',
  'close-up',
  'wide',
  'blue',
  'circle',
  'moves',
  'left',
]);

describe('vocab', () => {
  it('splits like the tokenizer: lower case, close-up whole, punctuation apart', () => {
    expect(splitCaption('Character 1 bounces, close-up.', RULES).map((w) => w.word)).toEqual([
      'character',
      '1',
      'bounces',
      ',',
      'close-up',
      '.',
    ]);
    expect(tokenCount('Character 1 is a red star.', RULES)).toBe(7);
  });

  it("splits by the loaded model's rules, not a built-in pattern", () => {
    const plain = { split: '[^\\s]+', lowercase: false };
    expect(splitCaption('Close-up, A star.', plain).map((w) => w.word)).toEqual(['Close-up,', 'A', 'star.']);
    expect(tokenCount('Close-up, A star.', plain)).toBe(3);
    expect(unknownWords('A star', { words: new Set(['a', 'star']), rules: plain }).map((w) => w.word)).toEqual(['A']);
  });

  it('keeps offsets into the original text', () => {
    const w = splitCaption('A  Red star', RULES)[1];
    expect([w.start, w.end]).toEqual([3, 6]);
  });

  it('reports unknown words once, in order', () => {
    expect(
      unknownWords('Character 1 jumps and jumps in the medow.', { words: VOCAB, rules: RULES }).map((w) => w.word),
    ).toEqual(['jumps', 'and', 'medow']);
    expect(unknownWords('Character 1 is a red star.', { words: VOCAB, rules: RULES })).toEqual([]);
  });

  it('suggests words of the same meaning first, then by spelling', () => {
    const VOCAB = new Set(['<pad>', 'character', 'spins', 'bounces', 'grows', 'beach', 'forest', 'meadow', 'red', '.']);
    expect(suggest('rotates', VOCAB)[0]).toBe('spins');
    expect(suggest('ocean', VOCAB)[0]).toBe('beach');
    expect(suggest('woods', VOCAB)[0]).toBe('forest');
    expect(byMeaning('Ocean', VOCAB)).toEqual(['beach']);
    expect(byMeaning('ocean', ['red'])).toEqual([]); // only words the model has
    expect(suggest('grow', VOCAB)).toEqual(['grows', ...suggest('grow', VOCAB).slice(1)]);
    expect(new Set(suggest('grow', VOCAB)).size).toBe(suggest('grow', VOCAB).length); // no word twice
    expect(captionWords(['<pad>', '.', ',', 'red'])).toEqual(['red']);
  });

  it('suggests the nearest words, skipping special tokens', () => {
    expect(suggest('medow', VOCAB)[0]).toBe('meadow');
    expect(suggest('bounce', VOCAB)[0]).toBe('bounces');
    expect(suggest('pad', VOCAB)).not.toContain('<pad>');
    expect(suggest('zzzzzzzzzz', VOCAB)).toEqual([]);
  });

  it('edit distance', () => {
    expect(editDistance('kitten', 'sitting')).toBe(3);
    expect(editDistance('', 'abc')).toBe(3);
  });

  it('replaces a word keeping a leading capital', () => {
    const text = 'Medow and star';
    const w = splitCaption(text, RULES)[0];
    expect(replaceWord(text, w, 'meadow')).toBe('Meadow and star');
  });
});
