/**
 * Size caps and the same-origin rule for files the studio and the CLI read (src/model/limits.ts):
 * refused with one line, before the bytes are read or downloaded.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { MAX_JSON_BYTES, MAX_STORYBOARD_BYTES, MAX_WEIGHTS_BYTES, formatBytes } from '../../src/model/limits.ts';
import { InputError } from '../../src/model/errors.ts';
import { StoryboardError, parseStoryboardJson } from '../../src/model/storyboard.ts';
import { loadModel } from '../../src/model/weights.ts';
import { WorkerError } from '../../src/worker/errors.ts';
import { checkOrigin, fetchModelFiles } from '../../src/worker/model-files.ts';
import { MODEL_DIR } from '../model/fixture.ts';

const here = { href: 'https://studio.example/app/', origin: 'https://studio.example' };

afterEach(() => {
  vi.unstubAllGlobals();
});

describe('limits', () => {
  it('formats sizes', () => {
    expect(formatBytes(12)).toBe('12 bytes');
    expect(formatBytes(MAX_STORYBOARD_BYTES + 1)).toBe('1.0 MiB');
    expect(formatBytes(MAX_WEIGHTS_BYTES)).toBe('2.00 GiB');
  });

  it('a storyboard text over 1 MiB is refused with one line', () => {
    const text = `{"version": 1, "globalCaption": "${'x'.repeat(MAX_STORYBOARD_BYTES)}", "shots": []}`;
    expect(() => parseStoryboardJson(text)).toThrow(StoryboardError);
    expect(() => parseStoryboardJson(text)).toThrow(/^storyboard is 1\.0 MiB or more, more than the limit of 1\.0 MiB/);
  });

  it('loadModel refuses a manifest that claims a huge file before reading that file', async () => {
    const files = Object.fromEntries(
      ['manifest.json', 'config.json', 'vocab.json', 'model.safetensors'].map((f) => [
        f,
        new Uint8Array(readFileSync(join(MODEL_DIR, f))),
      ]),
    );
    const m = JSON.parse(new TextDecoder().decode(files['manifest.json'])) as {
      files: Record<string, { bytes: number }>;
    };
    m.files['model.safetensors'].bytes = 3 * 2 ** 30;
    const read = vi.fn(async (name: string) =>
      name === 'manifest.json' ? new TextEncoder().encode(JSON.stringify(m)) : files[name],
    );
    await expect(loadModel(read, 'm')).rejects.toThrow(
      /^m\/model\.safetensors \(by manifest\.json\) is 3\.00 GiB, more than the limit of 2\.00 GiB/,
    );
    expect(read.mock.calls.map((c) => c[0])).not.toContain('model.safetensors');
    const bigManifest = new Uint8Array(MAX_JSON_BYTES + 1);
    await expect(loadModel(async () => bigManifest, 'm')).rejects.toBeInstanceOf(InputError);
  });
});

describe('worker model files', () => {
  it('load only from the studio origin', () => {
    expect(() => checkOrigin({ name: 'm', url: '/models/m/' }, here)).not.toThrow();
    expect(() => checkOrigin({ name: 'm', url: 'https://studio.example/models/m/' }, here)).not.toThrow();
    for (const url of [
      'https://evil.example/m/',
      'http://studio.example/models/m/',
      '//cdn.example/m/',
      'data:application/json,{}',
    ]) {
      let err: unknown;
      try {
        checkOrigin({ name: 'm', url }, here);
      } catch (e) {
        err = e;
      }
      expect(err, url).toBeInstanceOf(WorkerError);
      expect((err as WorkerError).code).toBe('model-invalid');
      expect((err as Error).message).toMatch(
        /models load only from the studio's own origin \(https:\/\/studio\.example\)/,
      );
    }
  });

  function manifest(bytes: number): string {
    return JSON.stringify({
      format: 'moc-dit',
      formatVersion: 1,
      files: { 'model.safetensors': { bytes, sha256: '0'.repeat(64) } },
    });
  }

  it('refuse a manifest that claims a file over its cap, before downloading it', async () => {
    const fetch = vi.fn(async () => new Response(manifest(MAX_WEIGHTS_BYTES + 1)));
    vi.stubGlobal('fetch', fetch);
    await expect(fetchModelFiles({ name: 'm', url: 'http://localhost/m/' })).rejects.toThrow(
      /^model "m": model\.safetensors \(by manifest\.json\) is 2\.00 GiB, more than the limit/,
    );
    expect(fetch).toHaveBeenCalledTimes(1);
  });

  it('stop a download that sends more than the manifest says', async () => {
    let pulled = 0;
    const endless = (): ReadableStream<Uint8Array> =>
      new ReadableStream({
        pull(c) {
          pulled++;
          c.enqueue(new Uint8Array(64 * 1024));
        },
      });
    vi.stubGlobal(
      'fetch',
      vi.fn(async (url: string) =>
        url.endsWith('manifest.json') ? new Response(manifest(100_000)) : new Response(endless()),
      ),
    );
    await expect(fetchModelFiles({ name: 'm', url: 'http://localhost/m/' }, () => undefined)).rejects.toThrow(
      /model\.safetensors sends \d+ bytes or more, more than the 100000 it should have/,
    );
    expect(pulled).toBeLessThan(5);
    vi.stubGlobal(
      'fetch',
      vi.fn(async () => new Response(endless(), { headers: { 'content-length': String(2 * MAX_JSON_BYTES) } })),
    );
    await expect(fetchModelFiles({ name: 'm', url: 'http://localhost/m/' })).rejects.toThrow(
      /manifest\.json sends 33554432 bytes or more/,
    );
  });
});

describe('storyboard import in the studio', () => {
  it('refuses a picked file over 1 MiB from its size, without reading it', async () => {
    const { importStoryboardFile } = await import('../../src/state/actions/board.ts');
    const { useStudio } = await import('../../src/state/store.ts');
    const before = useStudio.getState().board;
    const text = vi.fn(async () => '{}');
    const file = { name: 'movie.mp4', size: 50 * 1024 * 1024, text } as unknown as Blob & { name: string };
    expect(await importStoryboardFile(file)).toBe(false);
    expect(text).not.toHaveBeenCalled();
    expect(useStudio.getState().importError).toBe(
      'Could not import “movie.mp4”: it is 50.0 MiB, more than the 1.0 MiB a storyboard may be — your storyboard is unchanged.',
    );
    expect(useStudio.getState().board).toBe(before);
  });
});
