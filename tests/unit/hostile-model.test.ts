/**
 * Hostile model folders (the manifest's hashes sit beside the files, so they catch accidents, not
 * intent): bounds on every config.json number, weights that are not finite or are huge, vocab.json
 * split patterns that could backtrack without end, captions and names echoed into messages, and
 * generated frames that overflowed. Each is refused with one line naming what is wrong.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseModelConfig } from '../../src/model/config.ts';
import { OverflowError, checkFiniteFrames } from '../../src/model/generate.ts';
import { InputError, oneLine } from '../../src/model/errors.ts';
import { parseSafetensors, serializeSafetensors, type SafeTensor } from '../../src/model/safetensors.ts';
import { MAX_CAPTION_CHARS, Tokenizer, splitPatternProblem } from '../../src/model/tokenizer.ts';
import { checkWeights } from '../../src/model/weights.ts';
import { MODEL_DIR } from '../model/fixture.ts';

const config = JSON.parse(readFileSync(join(MODEL_DIR, 'config.json'), 'utf8')) as Record<string, unknown>;
const vocab = JSON.parse(readFileSync(join(MODEL_DIR, 'vocab.json'), 'utf8')) as Record<string, unknown>;

function refusal(f: () => unknown): string {
  let err: unknown;
  try {
    f();
  } catch (e) {
    err = e;
  }
  expect(err, 'expected a refusal').toBeInstanceOf(InputError);
  const msg = (err as Error).message;
  expect(msg).not.toMatch(/[\n\r\u001b]/); // eslint-disable-line no-control-regex -- the point
  return msg;
}

describe('config.json bounds', () => {
  const cases: Array<[string, unknown]> = [
    ['depth', 1e6],
    ['depth', 0],
    ['dim', 2 ** 20],
    ['heads', 1e4],
    ['vocab_size', 1e9],
    ['text_len', 1e5],
    ['image_size', 4096],
    ['patch_size', 1e3],
    ['mlp_ratio', 0.001],
    ['mlp_ratio', 1e3],
    ['rope_theta', 1e300],
    ['t_freq_dim', 1e6],
    ['chunk_frames', 1e5],
    ['top_k', 1e9],
    ['fps', 1e6],
    ['t_min', 2],
    ['train_frames', 1e7],
    ['depth', 2.5],
    ['depth', '2'],
    ['name', 'x'.repeat(201)],
  ];
  for (const [key, value] of cases) {
    it(`${key}: ${String(value).slice(0, 12)} is refused naming the key`, () => {
      const t = performance.now();
      const msg = refusal(() => parseModelConfig({ ...config, [key]: value }, 'm/config.json'));
      expect(msg).toMatch(new RegExp(`^m/config\\.json: ${key}: (must be|Invalid|expected)`));
      expect(performance.now() - t).toBeLessThan(100);
    });
  }

  it('the shipped configs and a generous one are accepted', () => {
    for (const m of ['moc-base', 'moc-tiny'])
      parseModelConfig(JSON.parse(readFileSync(`public/models/${m}/config.json`, 'utf8')));
    expect(parseModelConfig({ ...config, depth: 256, dim: 4096, heads: 64, mlp_ratio: 16 }).mlpHidden).toBe(65536);
  });
});

describe('weights', () => {
  const cfg = parseModelConfig(config);
  const file = parseSafetensors(readFileSync(join(MODEL_DIR, 'model.safetensors')), 'model.safetensors');
  const withValue = (name: string, at: number, bits: number): Uint8Array => {
    const tensors: Record<string, SafeTensor> = Object.fromEntries(file.tensors);
    const data = Uint16Array.from(tensors[name].data as Uint16Array);
    data[at] = bits;
    return serializeSafetensors({ ...tensors, [name]: { ...tensors[name], data } });
  };
  it('the fixture loads', () => {
    expect(checkWeights(serializeSafetensors(Object.fromEntries(file.tensors)), cfg).size).toBe(file.tensors.size);
  });
  const cases: Array<[string, number, RegExp]> = [
    ['NaN', 0x7e00, /value NaN \(not finite\)/],
    ['+∞', 0x7c00, /value Infinity \(not finite\)/],
    ['−∞', 0xfc00, /value -Infinity \(not finite\)/],
    ['65504 (f16 max)', 0x7bff, /value 6\.55e\+4, beyond ±10000 \(trained weights stay below 10\)/],
  ];
  for (const [what, bits, re] of cases) {
    it(`refuses a weight of ${what} naming the tensor and index`, () => {
      const msg = refusal(() =>
        checkWeights(withValue('blocks.1.mlp_video.fc2.weight', 17, bits), cfg, 'm/model.safetensors'),
      );
      expect(msg).toMatch(/^m\/model\.safetensors: tensor 'blocks\.1\.mlp_video\.fc2\.weight' has the value /);
      expect(msg).toMatch(re);
      expect(msg).toMatch(/ at index 17$/);
    });
  }
});

describe('vocab.json split patterns', () => {
  const tok = (split: string): Tokenizer => Tokenizer.fromJson({ ...vocab, split }, "model 'm'");

  it("train/vocab.py's pattern and simple ones are inside the subset", () => {
    for (const p of [vocab.split as string, '[a-z]+|[.,]', '\\w+', '[^\\s]+|\\.', 'a{1,3}b?c+', '^x$'])
      expect(splitPatternProblem(p), p).toBeNull();
    expect(tok(vocab.split as string).split('Character 1 spins, close-up.')).toEqual([
      'character',
      '1',
      'spins',
      ',',
      'close-up',
      '.',
    ]);
  });

  const catastrophic: Array<[string, RegExp]> = [
    ['(a+)+$', /groups are not supported/],
    ['(?:a|a)*b', /groups are not supported/],
    ['\\w*\\w*\\w*\\w*x', /two unbounded quantifiers/],
    ['a?a?a?a?a?aaaaa', /more than four quantifiers/],
    ['(a)\\1', /groups are not supported/],
    ['a\\1', /the escape \\1 is not supported/],
    ['(?=a)', /groups/],
    ['+a', /a quantifier must follow/],
    ['[a-z', /not closed/],
    ['a|b|c|d|e|f|g|h|i', /9 alternatives/],
    ['a'.repeat(300), /300 characters/],
  ];
  for (const [p, re] of catastrophic) {
    it(`refuses ${p.slice(0, 20)} in one line naming the model`, () => {
      const msg = refusal(() => tok(p));
      expect(msg).toMatch(/^model 'm': vocab\.json's split pattern ".*" is not supported: /);
      expect(msg).toMatch(re);
    });
  }

  it('the slowest allowed shape on the longest caption returns quickly', () => {
    const t = tok('[a-z]+x|[^\\s]+y|a{1,16}z'); // each fails after scanning the rest of the text
    const text = 'a'.repeat(MAX_CAPTION_CHARS);
    const t0 = performance.now();
    expect(t.split(text)).toEqual(
      Array(MAX_CAPTION_CHARS / 16)
        .fill('a'.repeat(16))
        .slice(0, 0),
    );
    expect(performance.now() - t0).toBeLessThan(2000);
  });

  it('a caption over the character limit is refused before splitting, quoted clipped', () => {
    const msg = refusal(() =>
      tok(vocab.split as string).encodeStrict('x'.repeat(MAX_CAPTION_CHARS + 1), 8, 'storyboard.shots[0].caption'),
    );
    expect(msg).toMatch(
      new RegExp(
        `^storyboard\\.shots\\[0\\]\\.caption: caption is ${MAX_CAPTION_CHARS + 1} characters, the limit is ${MAX_CAPTION_CHARS}: "x{60}…"$`,
      ),
    );
  });
});

describe('text echoed into messages', () => {
  const t = Tokenizer.fromJson(vocab, "model '\u001b[2Jevil\u202e'");

  it('oneLine escapes terminal escapes (ESC, CSI), zero-width and bidi characters', () => {
    expect(oneLine('a\u001b[31mb\u009b2Jc\u200bd\u202ee\u2066f\ufeffg\u061ch')).toBe(
      'a\\u001b[31mb\\u009b2Jc\\u200bd\\u202ee\\u2066f\\ufeffg\\u061ch',
    );
    expect(oneLine('café ünïcode 日本')).toBe('café ünïcode 日本');
  });

  it('thousands of unknown words: the message names 8, counts the rest, clips long ones', () => {
    const words = Array.from({ length: 600 }, (_, i) => `zz${i}`).join(' ');
    const msg = refusal(() => t.encodeStrict(`${'q'.repeat(100)} ${words}`, 4000, 'storyboard.globalCaption'));
    expect(msg.length).toBeLessThan(400);
    expect(msg).toMatch(
      /^storyboard\.globalCaption: words 'q{40}…', 'zz0', .*'zz6' and 593 more not in the vocabulary of model '\\u001b\[2Jevil\\u202e' \(45 words\)$/,
    );
  });

  it('a caption over the token limit is quoted clipped', () => {
    const msg = refusal(() => t.encodeStrict('character '.repeat(300), 8, 'caption'));
    expect(msg).toMatch(/^caption: caption has 300 tokens, the limit is 8: "(character ){6}…"$/);
  });
});

describe('generated frames', () => {
  it('NaN or ±∞ in the frames is an OverflowError naming the shot, not black frames', () => {
    const size = 2;
    const x = new Float32Array((1 + 2) * 3 * size * size);
    checkFiniteFrames(x, [1, 2], size);
    x[3 * size * size + 5] = NaN; // shot 2, its first frame
    let err: unknown;
    try {
      checkFiniteFrames(x, [1, 2], size);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(OverflowError);
    expect((err as Error).message).toBe(
      'the generated frames of shot 2 hold NaN values: the computation overflowed float32 (damaged weights?); no frames were made',
    );
  });
});
