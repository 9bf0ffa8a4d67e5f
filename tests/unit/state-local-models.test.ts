/**
 * Your own model (src/state/actions/local-models.ts, src/state/local-models.ts): a model folder
 * is checked as a download is (manifest, caps, sizes, sha256) before anything is stored, stored
 * under local-models/NAME/ in the Cache API, listed beside the shipped models, and removable;
 * a folder the loader refuses is removed again.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import type * as ModelActions from '../../src/state/actions/model.ts';

/** A Cache API stand-in: one cache, a Map of URL → bytes. */
const stored = new Map<string, ArrayBuffer>();
vi.stubGlobal('caches', {
  open: async () => ({
    put: async (url: string, res: Response) => void stored.set(url, await res.arrayBuffer()),
    keys: async () => [...stored.keys()].map((url) => ({ url })),
    delete: async (req: { url: string }) => stored.delete(req.url),
  }),
});
const mem = new Map<string, string>();
vi.stubGlobal('localStorage', {
  getItem: (k: string) => mem.get(k) ?? null,
  setItem: (k: string, v: string) => void mem.set(k, v),
});
vi.stubGlobal('location', { href: 'http://studio.test/' });

/** What loading a model does: the fake loader refuses names in `refuse`. */
const refuse = new Set<string>();
vi.mock('../../src/state/actions/model.ts', async (importOriginal) => {
  const real = await importOriginal<typeof ModelActions>();
  return {
    ...real,
    modelUrl: (e: { path: string }) => real.modelUrl(e as never, '/'),
    chooseModel: async (name: string) => {
      const st = useStudio.getState();
      st.selectModel(name);
      st.setModel(
        refuse.has(name)
          ? {
              name,
              phase: 'error',
              error: { code: 'model-invalid', message: `model "${name}": config.json has depth -1` },
            }
          : { name, phase: 'ready', error: null },
      );
    },
  };
});

const { addLocalModel, folderFromFileList, removeLocalModel } = await import('../../src/state/actions/local-models.ts');
const { localModelEntries, localModelName } = await import('../../src/state/local-models.ts');
const { useStudio } = await import('../../src/state/store.ts');

const DIR = 'public/models/moc-tiny';
function folder(name = 'moc-tiny', patch: Record<string, Blob | null> = {}) {
  const files = new Map<string, Blob>();
  for (const f of readdirSync(DIR)) files.set(f, new Blob([readFileSync(join(DIR, f))]));
  for (const [f, b] of Object.entries(patch)) {
    if (b) files.set(f, b);
    else files.delete(f);
  }
  return { folder: name, files };
}
const SHIPPED = { name: 'moc-base', path: 'models/moc-base', description: '', params: 0, bytes: 0, default: true };

beforeEach(() => {
  stored.clear();
  mem.clear();
  refuse.clear();
  useStudio.getState().setModel({ index: 'ready', entries: [SHIPPED], name: 'moc-base', phase: 'ready' });
  useStudio.getState().setSettings({ model: 'moc-base' });
});

describe('own model folders', () => {
  it('stores a good folder under local-models/, lists it after the shipped models, selects it, and removes it', async () => {
    expect(await addLocalModel(folder())).toBeNull();
    expect([...stored.keys()].sort()).toEqual(
      ['config.json', 'manifest.json', 'model.safetensors', 'vocab.json'].map(
        (f) => `http://studio.test/local-models/moc-tiny/${f}`,
      ),
    );
    expect(useStudio.getState().model.entries.map((e) => e.name)).toEqual(['moc-base', 'moc-tiny']);
    expect(useStudio.getState().settings.model).toBe('moc-tiny');
    expect(localModelEntries().map((e) => e.name)).toEqual(['moc-tiny']);
    // a second folder of the same name gets its own name
    expect(await addLocalModel(folder())).toBeNull();
    expect(localModelEntries().map((e) => e.name)).toEqual(['moc-tiny', 'moc-tiny-2']);

    await removeLocalModel('moc-tiny-2');
    await removeLocalModel('moc-tiny');
    expect(stored.size).toBe(0);
    expect(localModelEntries()).toEqual([]);
    expect(useStudio.getState().model.entries.map((e) => e.name)).toEqual(['moc-base']);
    expect(useStudio.getState().settings.model).toBe('moc-base');
  });

  it('refuses a folder that fails a check, storing nothing', async () => {
    const manifest = JSON.parse(readFileSync(join(DIR, 'manifest.json'), 'utf8'));
    const cases: Array<[Record<string, Blob | null>, RegExp]> = [
      [{ 'manifest.json': null }, /has no manifest\.json/],
      [{ 'manifest.json': new Blob(['{']) }, /manifest\.json is not valid JSON/],
      [
        { 'manifest.json': new Blob([JSON.stringify({ ...manifest, format: 'other' })]) },
        /manifest\.json has format "other"/,
      ],
      [
        {
          'manifest.json': new Blob([
            JSON.stringify({ ...manifest, files: { 'config.json': manifest.files['config.json'] } }),
          ]),
        },
        /does not list vocab\.json, model\.safetensors/,
      ],
      [{ 'vocab.json': null }, /vocab\.json is listed in manifest\.json but is not in the folder/],
      [
        { 'vocab.json': new Blob([readFileSync(join(DIR, 'vocab.json'), 'utf8').replace('meadow', 'medow')]) },
        /vocab\.json has \d+ bytes, the manifest says \d+/,
      ],
      [
        { 'vocab.json': new Blob([readFileSync(join(DIR, 'vocab.json'), 'utf8').replace('meadow', 'meadoW')]) },
        /vocab\.json fails its sha256 check/,
      ],
    ];
    for (const [patch, why] of cases) {
      const problem = await addLocalModel(folder('mine', patch));
      expect(problem).toMatch(/^Could not add the folder “mine”: /);
      expect(problem).toMatch(why);
      expect(stored.size).toBe(0);
      expect(localModelEntries()).toEqual([]);
    }
  });

  it('removes a folder the loader refuses, and goes back to the model before', async () => {
    refuse.add('moc-tiny');
    expect(await addLocalModel(folder())).toBe('Could not add the folder “moc-tiny”: config.json has depth -1');
    expect(stored.size).toBe(0);
    expect(localModelEntries()).toEqual([]);
    expect(useStudio.getState().settings.model).toBe('moc-base');
  });

  it('names folders safely and reads a folder input', () => {
    expect(localModelName('My Model (v2)', [])).toBe('My-Model-v2');
    expect(localModelName('...', [])).toBe('my-model');
    expect(localModelName('moc-base', ['moc-base', 'moc-base-2'])).toBe('moc-base-3');
    const file = (path: string) => Object.assign(new File(['x'], path.split('/').pop()!), { webkitRelativePath: path });
    const picked = folderFromFileList([
      file('run7/manifest.json'),
      file('run7/config.json'),
      file('run7/sub/deep.bin'),
    ]);
    expect(picked!.folder).toBe('run7');
    expect([...picked!.files.keys()]).toEqual(['manifest.json', 'config.json']);
  });
});
