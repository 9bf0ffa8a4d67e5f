/** Model folder loading, config, tokenizer: bad inputs are refused with one clear line. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { countParameters, expectedWeights, parseModelConfig } from '../../src/model/config.ts';
import { parseSafetensors, serializeSafetensors, type SafeTensor } from '../../src/model/safetensors.ts';
import { Tokenizer } from '../../src/model/tokenizer.ts';
import { loadModel, sha256Hex } from '../../src/model/weights.ts';
import { MODEL_DIR, loadFixture } from './fixture.ts';

const original = (name: string): Uint8Array => new Uint8Array(readFileSync(join(MODEL_DIR, name)));

/** A model folder in memory; `manifest: 'auto'` recomputes the manifest from the files. */
async function folder(
  files: Record<string, Uint8Array>,
  manifest: 'auto' | 'original' = 'auto',
): Promise<(name: string) => Promise<Uint8Array>> {
  const all: Record<string, Uint8Array> = {
    'config.json': original('config.json'),
    'vocab.json': original('vocab.json'),
    'model.safetensors': original('model.safetensors'),
    ...files,
  };
  if (manifest === 'auto') {
    const m: Record<string, { bytes: number; sha256: string }> = {};
    for (const [k, v] of Object.entries(all)) m[k] = { bytes: v.length, sha256: await sha256Hex(v) };
    all['manifest.json'] = new TextEncoder().encode(JSON.stringify({ files: m }));
  } else all['manifest.json'] = original('manifest.json');
  return async (name) => {
    const f = all[name];
    if (!f) throw new Error('ENOENT: no such file');
    return f;
  };
}

function tensors(mutate: (t: Map<string, SafeTensor>) => void): Uint8Array {
  const file = parseSafetensors(original('model.safetensors'));
  mutate(file.tensors);
  return serializeSafetensors(file.tensors, file.metadata);
}

async function refusal(files: Record<string, Uint8Array>, manifest: 'auto' | 'original' = 'auto'): Promise<string> {
  try {
    await loadModel(await folder(files, manifest), 'm');
  } catch (e) {
    const msg = (e as Error).message;
    expect(msg).not.toContain('\n');
    expect((e as Error).name).toBe('InputError');
    return msg;
  }
  throw new Error('loadModel accepted a bad folder');
}

/** A valid config.json of a small model, for the tests that vary one key. */
const BASE_CONFIG = {
  format: 'moc-dit',
  formatVersion: 1,
  name: 's',
  vocab_size: 45,
  text_len: 24,
  image_size: 64,
  patch_size: 8,
  channels: 3,
  dim: 192,
  depth: 6,
  heads: 6,
  mlp_ratio: 4,
  rope_theta: 100,
  t_freq_dim: 256,
  chunk_frames: 1,
  top_k: 4,
  causal: true,
  fps: 8,
};

describe('loadModel', () => {
  it('loads the fixture model: config, vocabulary, every weight as f32 (fp16 bits kept)', async () => {
    const m = await loadModel(await folder({}, 'original'), 'm');
    expect(m.config).toMatchObject({
      name: 'fixture-tiny',
      dim: 64,
      heads: 2,
      headDim: 32,
      depth: 2,
      grid: 4,
      patchDim: 48,
      mlpHidden: 128,
      textLen: 8,
    });
    expect(m.weights.size).toBe(expectedWeights(m.config).size);
    const w = m.weights.get('blocks.0.attn.qkv_video.weight')!;
    expect(w.shape).toEqual([192, 64]);
    expect(w.f16).not.toBeNull();
    expect(countParameters(m.config)).toBe(JSON.parse(new TextDecoder().decode(original('config.json'))).params);
  });

  it('refuses a sha256 that differs from the manifest', async () => {
    const bytes = original('model.safetensors').slice();
    bytes[bytes.length - 1] ^= 1;
    expect(await refusal({ 'model.safetensors': bytes }, 'original')).toMatch(
      /^m\/model\.safetensors: sha256 [0-9a-f]{12}… differs from manifest\.json's/,
    );
  });

  it('refuses a truncated file (manifest or header)', async () => {
    const cut = original('model.safetensors').slice(0, 5000);
    expect(await refusal({ 'model.safetensors': cut }, 'original')).toMatch(
      /5000 bytes, manifest\.json says \d+ \(truncated/,
    );
    expect(await refusal({ 'model.safetensors': cut.slice(0, 1000) })).toMatch(
      /^m\/model\.safetensors: header length \d+ exceeds the 992 bytes after it/,
    );
    expect(await refusal({ 'model.safetensors': cut })).toMatch(
      /data_offsets \[\d+, \d+\] run past the end of the data/,
    );
    const body = original('model.safetensors');
    expect(await refusal({ 'model.safetensors': body.slice(0, body.length - 64) })).toMatch(
      /run past the end of the data/,
    );
  });

  it('refuses a header that lies about sizes', async () => {
    const bytes = original('model.safetensors').slice();
    const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    const header = new TextDecoder().decode(bytes.subarray(8, 8 + n));
    const lie = header.replace('"shape":[192,64]', '"shape":[190,64]'); // same length: data_offsets no longer match
    expect(lie).not.toBe(header);
    bytes.set(new TextEncoder().encode(lie), 8);
    expect(await refusal({ 'model.safetensors': bytes })).toMatch(
      /tensor '.*' F16 \[190, 64\] needs 24320 bytes but data_offsets/,
    );
  });

  it('refuses a wrong dtype, a missing, misshapen or unexpected tensor', async () => {
    const asI32 = tensors((t) => {
      const w = t.get('final.proj.bias')!;
      t.set('final.proj.bias', { dtype: 'I32', shape: w.shape, data: new Int32Array(w.shape[0]) });
    });
    expect(await refusal({ 'model.safetensors': asI32 })).toBe(
      "m/model.safetensors: tensor 'final.proj.bias' has dtype I32; weights must be F16 or F32",
    );
    const missing = tensors((t) => t.delete('blocks.1.attn.k_norm_video.weight'));
    expect(await refusal({ 'model.safetensors': missing })).toMatch(
      /tensor 'blocks\.1\.attn\.k_norm_video\.weight' is missing/,
    );
    const shaped = tensors((t) => {
      const w = t.get('final.proj.bias')!;
      t.set('final.proj.bias', { ...w, shape: [6, 8] });
    });
    expect(await refusal({ 'model.safetensors': shaped })).toMatch(
      /'final\.proj\.bias' has shape \[6, 8\], the config needs \[48\]/,
    );
    const extra = tensors((t) =>
      t.set('blocks.1.attn.out_text.bias', { dtype: 'F16', shape: [64], data: new Uint16Array(64) }),
    );
    expect(await refusal({ 'model.safetensors': extra })).toMatch(
      /'blocks\.1\.attn\.out_text\.bias' is not a weight of this config's model/,
    );
  });

  it('refuses bad config.json, vocab.json and manifest.json', async () => {
    const cfg = JSON.parse(new TextDecoder().decode(original('config.json')));
    const enc = (o: unknown): Uint8Array => new TextEncoder().encode(JSON.stringify(o));
    expect(await refusal({ 'config.json': enc({ ...cfg, heads: 3 }) })).toBe(
      'm/config.json: dim 64 is not a multiple of heads 3',
    );
    expect(await refusal({ 'config.json': enc({ ...cfg, formatVersion: 2 }) })).toMatch(
      /formatVersion 2 is not supported/,
    );
    expect(await refusal({ 'config.json': enc({ ...cfg, depth: 'two' }) })).toMatch(/^m\/config\.json: depth: /);
    expect(await refusal({ 'config.json': new TextEncoder().encode('{oops') })).toMatch(
      /^m\/config\.json: not valid JSON/,
    );
    const vocab = JSON.parse(new TextDecoder().decode(original('vocab.json')));
    expect(await refusal({ 'vocab.json': enc({ ...vocab, words: vocab.words.slice(0, 10) }) })).toBe(
      "m/vocab.json: 10 words, config.json's vocab_size is 45",
    );
    const read = await folder({});
    await expect(
      loadModel(async (n) => (n === 'vocab.json' ? Promise.reject(new Error('ENOENT: gone')) : read(n)), 'm'),
    ).rejects.toThrow('m/vocab.json: cannot read (ENOENT: gone)');
  });

  it('parseModelConfig derives sizes as train/model.py does', () => {
    const c = parseModelConfig({
      format: 'moc-dit',
      formatVersion: 1,
      name: 's',
      vocab_size: 45,
      text_len: 24,
      image_size: 64,
      patch_size: 4,
      channels: 3,
      dim: 160,
      depth: 8,
      heads: 5,
      mlp_ratio: 4,
      rope_theta: 100,
      t_freq_dim: 256,
      chunk_frames: 1,
      top_k: 4,
      causal: true,
      fps: 8,
    });
    expect([c.grid, c.headDim, c.patchDim, c.mlpHidden]).toEqual([16, 32, 48, 640]);
    expect(countParameters(c) * 2).toBeLessThanOrEqual(16 * 2 ** 20);
    expect([c.trainShots, c.trainFrames]).toEqual([null, null]); // optional: older files do not say
  });

  it('parseModelConfig reads the trained shot shape and refuses a bad one', () => {
    const c = parseModelConfig({ ...BASE_CONFIG, train_shots: 4, train_frames: 8 });
    expect([c.trainShots, c.trainFrames]).toEqual([4, { min: 8, max: 8 }]);
    expect(
      parseModelConfig({ ...BASE_CONFIG, train_frames: 8, train_frames_min: 4, train_frames_max: 12 }).trainFrames,
    ).toEqual({ min: 4, max: 12 });
    expect(() => parseModelConfig({ ...BASE_CONFIG, train_frames: 0 }, 'm/config.json')).toThrow(
      /^m\/config\.json: train_frames: /,
    );
    expect(() => parseModelConfig({ ...BASE_CONFIG, train_shots: 2.5 })).toThrow(/train_shots/);
    expect(() => parseModelConfig({ ...BASE_CONFIG, train_frames_min: 4 }, 'm/config.json')).toThrow(
      'm/config.json: train_frames_min and train_frames_max come together',
    );
    expect(() =>
      parseModelConfig({ ...BASE_CONFIG, train_frames_min: 9, train_frames_max: 4 }, 'm/config.json'),
    ).toThrow('m/config.json: train_frames_min 9 is above train_frames_max 4');
  });

  it('parseModelConfig reads route_view (rotary where absent) and refuses an unknown one', () => {
    expect(parseModelConfig(BASE_CONFIG).routeView).toBe('rotary');
    for (const v of ['rotary', 'spatial', 'unrotated'])
      expect(parseModelConfig({ ...BASE_CONFIG, route_view: v }).routeView).toBe(v);
    expect(() => parseModelConfig({ ...BASE_CONFIG, route_view: 'temporal' }, 'm/config.json')).toThrow(
      /^m\/config\.json: route_view: /,
    );
  });

  it('parseModelConfig reads causal_text (absent: false) and refuses a bad one', () => {
    expect(parseModelConfig(BASE_CONFIG).causalText).toBe(false);
    expect(parseModelConfig({ ...BASE_CONFIG, causal_text: true }).causalText).toBe(true);
    expect(() => parseModelConfig({ ...BASE_CONFIG, causal_text: 'yes' }, 'm/config.json')).toThrow(
      /^m\/config\.json: causal_text: /,
    );
  });

  it('the shipped models say what shot shape they were trained on', () => {
    const shipped = (name: string) =>
      parseModelConfig(JSON.parse(readFileSync(join('public/models', name, 'config.json'), 'utf8')));
    expect([shipped('moc-base').trainShots, shipped('moc-base').trainFrames]).toEqual([4, { min: 4, max: 16 }]);
    expect([shipped('moc-tiny').trainShots, shipped('moc-tiny').trainFrames]).toEqual([4, { min: 4, max: 4 }]);
  });
});

describe('Tokenizer', () => {
  const tok = Tokenizer.fromJson(
    JSON.parse(readFileSync(join(MODEL_DIR, 'vocab.json'), 'utf8')),
    "model 'fixture-tiny'",
  );

  it('gives the ids train/vocab.py gives (fixture captions)', () => {
    const { meta } = loadFixture();
    const caps = [meta.captions.global, ...meta.captions.shots];
    caps.forEach((c, i) => expect(Array.from(tok.encode(c, 8).ids)).toEqual(meta.ids[i]));
  });

  it('lower-cases, splits punctuation, keeps close-up whole, pads with <pad>', () => {
    expect(tok.split('Character 2 spins,CLOSE-UP.')).toEqual(['character', '2', 'spins', ',', 'close-up', '.']);
    const e = tok.encode('Character 1 bounces.', 6);
    expect(e.length).toBe(4);
    expect(Array.from(e.ids.slice(4))).toEqual([0, 0]);
  });

  it('reports unknown words with the vocabulary they are not in', () => {
    expect(tok.encode('a purple dragon flies', 8).unknown).toEqual(['dragon', 'flies']);
    expect(() => tok.encodeStrict('a purple dragon flies', 8, 'storyboard.shots[1].caption')).toThrow(
      "storyboard.shots[1].caption: words 'dragon', 'flies' not in the vocabulary of model 'fixture-tiny' (45 words)",
    );
  });

  it('refuses a caption that is too long, naming the limit', () => {
    expect(() =>
      tok.encodeStrict('character 1 is a red star and character 2 is a blue circle .', 8, 'storyboard.globalCaption'),
    ).toThrow(/^storyboard\.globalCaption: caption has 14 tokens, the limit is 8: /);
  });

  it('refuses a malformed vocab.json', () => {
    expect(() =>
      Tokenizer.fromJson(
        { version: 1, pad: '<pad>', unk: '<unk>', lowercase: true, split: '[', words: ['<pad>', '<unk>'] },
        'v',
      ),
    ).toThrow(/^v: vocab\.json's split pattern "\[" is not supported: a character class is not closed/);
    expect(() =>
      Tokenizer.fromJson(
        { version: 1, pad: '<pad>', unk: '<unk>', lowercase: true, split: '\\q', words: ['<pad>', '<unk>'] },
        'v',
      ),
    ).toThrow(/^v: vocab\.json's split pattern is not a valid regular expression/);
    expect(() =>
      Tokenizer.fromJson(
        { version: 1, pad: '<pad>', unk: '<unk>', lowercase: true, split: 'x', words: ['a', 'b'] },
        'v',
      ),
    ).toThrow("v: vocab.json's words lack the pad or unk token");
  });
});
