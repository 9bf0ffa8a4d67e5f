/**
 * Property-based fuzzing (fast-check) of the safetensors parser and the model-folder loader:
 * random bytes, truncations, bit flips, headers that lie about lengths, offsets, shapes and dtypes,
 * huge sizes. Every input either parses or is refused with the project's one-line InputError —
 * no other exception type, no hang, no allocation driven by a number in the file.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { InputError } from '../../src/model/errors.ts';
import { parseSafetensors, serializeSafetensors } from '../../src/model/safetensors.ts';
import { loadModel, sha256Hex } from '../../src/model/weights.ts';
import { MODEL_DIR } from '../model/fixture.ts';

/** Runs f; returns 'ok' or asserts it threw a one-line InputError. */
function parsesOrRefuses(f: () => unknown): 'ok' | 'refused' {
  try {
    f();
    return 'ok';
  } catch (e) {
    expectInputError(e);
    return 'refused';
  }
}

function expectInputError(e: unknown): void {
  if (!(e instanceof InputError))
    throw new Error(`expected InputError, got ${(e as Error)?.name}: ${(e as Error)?.message}`, { cause: e });
  expect(e.message).not.toMatch(/[\n\r\u2028\u2029]/);
  expect(e.message.length).toBeLessThan(2000);
}

/** A file from a header value and a data buffer of `dataBytes` bytes. */
function file(header: unknown, dataBytes: number, lieAboutLength?: bigint): Uint8Array {
  const json = new TextEncoder().encode(typeof header === 'string' ? header : JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + dataBytes);
  new DataView(out.buffer).setBigUint64(0, lieAboutLength ?? BigInt(json.length), true);
  out.set(json, 8);
  return out;
}

const good = serializeSafetensors(
  {
    a: { dtype: 'F32', shape: [2, 3], data: Float32Array.from([1, -2, 3.5, 0, 1e-30, -7]) },
    idx: { dtype: 'I32', shape: [3], data: Int32Array.from([-1, 0, 7]) },
    h: { dtype: 'F16', shape: [1, 3], data: Uint16Array.from([0x3c00, 0xc000, 0x7e00]) },
  },
  { top_k: '2' },
);

// names with control characters, quotes and line breaks, which end up in messages
const name = fc.oneof(
  fc.string({ maxLength: 12 }),
  fc.constantFrom('__metadata__', '__proto__', 'a\nb', 'x\r\ny', '\u2028', 'constructor'),
);
const dim = fc.oneof(
  fc.nat(8),
  fc.constantFrom(-1, 1.5, 2 ** 31, 2 ** 53, Number.MAX_SAFE_INTEGER, 1e300),
  fc.anything(),
);
const entry = fc.record(
  {
    dtype: fc.oneof(fc.constantFrom('F32', 'I32', 'F16', 'F64', 'BF16', 'U8', 'f32', ''), fc.anything()),
    shape: fc.oneof(fc.array(dim, { maxLength: 4 }), fc.anything()),
    data_offsets: fc.oneof(fc.tuple(dim, dim), fc.array(fc.nat(64), { maxLength: 3 }), fc.anything()),
  },
  { requiredKeys: [] },
);
const header = fc.oneof(
  fc.dictionary(name, fc.oneof(entry, fc.anything()), { maxKeys: 5 }),
  fc.record({
    __metadata__: fc.oneof(fc.dictionary(name, fc.oneof(fc.string(), fc.anything()), { maxKeys: 3 }), fc.anything()),
  }),
  fc.anything(),
);

describe('fuzz: parseSafetensors', () => {
  it('random bytes parse or are refused with one line', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 256 }),
        (bytes) => void parsesOrRefuses(() => parseSafetensors(bytes, 'x.safetensors')),
      ),
      { numRuns: 2000 },
    );
  });

  it('random headers (lies about dtype, shape, offsets; odd names) parse or are refused', () => {
    fc.assert(
      fc.property(
        header,
        fc.nat(96),
        (h, dataBytes) => void parsesOrRefuses(() => parseSafetensors(file(h, dataBytes), 'x.safetensors')),
      ),
      { numRuns: 1500 },
    );
  });

  it('huge header lengths and tensor sizes are refused without allocating them', () => {
    const huge = fc.oneof(
      fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
      fc.constantFrom(2n ** 64n - 1n, 2n ** 63n, BigInt(Number.MAX_SAFE_INTEGER) + 1n, 100_000_001n),
    );
    fc.assert(
      fc.property(huge, (len) => {
        const bytes = file('{}', 0, len);
        expect(parsesOrRefuses(() => parseSafetensors(bytes, 'x.safetensors'))).toBe(len === 2n ? 'ok' : 'refused');
      }),
      { numRuns: 300 },
    );
    const bigTensor = fc.record({
      dtype: fc.constantFrom('F32', 'F16', 'I32'),
      shape: fc.array(fc.constantFrom(2 ** 20, 2 ** 31, 2 ** 40, Number.MAX_SAFE_INTEGER), {
        minLength: 1,
        maxLength: 3,
      }),
    });
    fc.assert(
      fc.property(bigTensor, fc.nat(2 ** 40), ({ dtype, shape }, end) => {
        const bytes = file({ t: { dtype, shape, data_offsets: [0, end] } }, 16);
        expect(parsesOrRefuses(() => parseSafetensors(bytes, 'x.safetensors'))).toBe('refused');
      }),
      { numRuns: 300 },
    );
  });

  it('every truncation and single-byte corruption of a good file parses or is refused', () => {
    for (let n = 0; n < good.length; n++) parsesOrRefuses(() => parseSafetensors(good.subarray(0, n), 'x.safetensors'));
    fc.assert(
      fc.property(fc.nat(good.length - 1), fc.integer({ min: 1, max: 255 }), (at, xor) => {
        const b = good.slice();
        b[at] ^= xor;
        parsesOrRefuses(() => parseSafetensors(b, 'x.safetensors'));
      }),
      { numRuns: 1500 },
    );
  });
});

describe('fuzz: loadModel (model folder)', () => {
  const files: Record<string, Uint8Array> = Object.fromEntries(
    ['manifest.json', 'config.json', 'vocab.json', 'model.safetensors'].map((f) => [
      f,
      new Uint8Array(readFileSync(join(MODEL_DIR, f))),
    ]),
  );

  /** A folder with `name` replaced by `bytes` and a manifest that agrees with it (so the damage reaches the parsers). */
  async function folder(name: string, bytes: Uint8Array): Promise<(f: string) => Promise<Uint8Array>> {
    const manifest = JSON.parse(new TextDecoder().decode(files['manifest.json'])) as {
      files: Record<string, { bytes: number; sha256: string }>;
    };
    manifest.files[name] = { bytes: bytes.length, sha256: await sha256Hex(bytes) };
    const all = { ...files, [name]: bytes, 'manifest.json': new TextEncoder().encode(JSON.stringify(manifest)) };
    return async (f) => {
      const b = all[f];
      if (!b) throw new Error(`ENOENT: ${f}`);
      return b;
    };
  }

  async function loadsOrRefuses(read: (f: string) => Promise<Uint8Array>): Promise<void> {
    try {
      await loadModel(read, 'm');
    } catch (e) {
      expectInputError(e);
    }
  }

  it('damaged files with a matching manifest load or are refused with one line', async () => {
    const target = fc.constantFrom('config.json', 'vocab.json', 'model.safetensors');
    const damage = fc.oneof(
      fc.record({ kind: fc.constant('truncate' as const), at: fc.double({ min: 0, max: 1, noNaN: true }) }),
      fc.record({
        kind: fc.constant('flip' as const),
        at: fc.double({ min: 0, max: 1, noNaN: true }),
        xor: fc.integer({ min: 1, max: 255 }),
      }),
      fc.record({ kind: fc.constant('json' as const), value: fc.jsonValue({ maxDepth: 3 }) }),
    );
    await fc.assert(
      fc.asyncProperty(target, damage, async (f, d) => {
        const src = files[f];
        let bytes: Uint8Array;
        if (d.kind === 'truncate') bytes = src.subarray(0, Math.floor(d.at * src.length));
        else if (d.kind === 'flip') {
          bytes = src.slice();
          bytes[Math.min(src.length - 1, Math.floor(d.at * src.length))] ^= d.xor;
        } else bytes = new TextEncoder().encode(JSON.stringify(d.value));
        await loadsOrRefuses(await folder(f, bytes));
      }),
      { numRuns: 400 },
    );
  });

  it('random manifests are refused with one line', async () => {
    await fc.assert(
      fc.asyncProperty(fc.jsonValue({ maxDepth: 4 }), async (m) => {
        await loadsOrRefuses(async (f) =>
          f === 'manifest.json' ? new TextEncoder().encode(JSON.stringify(m)) : files[f],
        );
      }),
      { numRuns: 300 },
    );
  });
});
