/**
 * The golden fixtures of train/fixtures.py (tests/fixtures/v<N>/), read for the model tests.
 * A version mismatch fails with the command that regenerates them.
 */
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parseSafetensors, type SafeTensor } from '../../src/model/safetensors.ts';
import { loadModel, type LoadedModel } from '../../src/model/weights.ts';

/** The fixture version these tests are written against. */
export const FIXTURE_VERSION = 1;
export const FIXTURE_DIR = resolve(__dirname, `../fixtures/v${FIXTURE_VERSION}`);
export const MODEL_DIR = join(FIXTURE_DIR, 'model');

export interface FixtureMeta {
  version: number;
  command: string;
  frames: number[];
  top_k: number;
  chunk_frames: number;
  causal: boolean;
  guidance: number;
  t_shot: number[];
  seeds: number[];
  keepShots: boolean[];
  captions: { global: string; shots: string[] };
  ids: number[][];
  routingMinGap: number;
}

export interface Fixture {
  meta: FixtureMeta;
  get(name: string): Float32Array;
  ints(name: string): Int32Array;
  tensor(name: string): SafeTensor;
}

let cached: Fixture | null = null;

/** @throws Error "fixtures version X, expected Y: regenerate with …" on a mismatch. */
export function loadFixture(): Fixture {
  if (cached) return cached;
  let meta: FixtureMeta;
  try {
    meta = JSON.parse(readFileSync(join(FIXTURE_DIR, 'meta.json'), 'utf8')) as FixtureMeta;
  } catch (e) {
    throw new Error(
      `fixtures v${FIXTURE_VERSION} not found (${(e as Error).message}): regenerate with /usr/bin/python3 -m train.fixtures`,
      { cause: e },
    );
  }
  if (meta.version !== FIXTURE_VERSION) {
    throw new Error(`fixtures version ${meta.version}, expected ${FIXTURE_VERSION}: regenerate with ${meta.command}`);
  }
  const file = parseSafetensors(readFileSync(join(FIXTURE_DIR, 'fixture.safetensors')), 'fixture.safetensors');
  const tensor = (name: string): SafeTensor => {
    const t = file.tensors.get(name);
    if (!t)
      throw new Error(
        `fixture.safetensors has no '${name}' (fixtures version ${meta.version}, expected ${FIXTURE_VERSION}): regenerate with ${meta.command}`,
      );
    return t;
  };
  cached = {
    meta,
    tensor,
    get: (name) => tensor(name).data as Float32Array,
    ints: (name) => tensor(name).data as Int32Array,
  };
  return cached;
}

/** route-views.safetensors: the fixture's moc forward with each non-default routing view (train/fixtures.py). */
export function loadRouteViews(): { tensor(name: string): SafeTensor; metadata: Record<string, string> } {
  const file = parseSafetensors(readFileSync(join(FIXTURE_DIR, 'route-views.safetensors')), 'route-views.safetensors');
  const tensor = (name: string): SafeTensor => {
    const t = file.tensors.get(name);
    if (!t)
      throw new Error(`route-views.safetensors has no '${name}': regenerate with /usr/bin/python3 -m train.fixtures`);
    return t;
  };
  return { tensor, metadata: file.metadata };
}

/** Reads a model folder from disk. */
export function dirFiles(dir: string): (name: string) => Promise<Uint8Array> {
  return async (name) => new Uint8Array(await readFile(join(dir, name)));
}

export function loadFixtureModel(): Promise<LoadedModel> {
  return loadModel(dirFiles(MODEL_DIR), 'tests/fixtures/v1/model');
}
