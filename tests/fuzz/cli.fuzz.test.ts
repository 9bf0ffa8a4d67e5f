/**
 * Property-based fuzzing (fast-check) of the command line: `node bin/moc.mjs attention|generate`
 * spawned with random argument vectors (known and unknown flags, good and bad values, paths to
 * missing files, folders, devices, junk, oversized and damaged files). A user error must exit
 * non-zero with exactly one line on stderr starting `moc …:` and no stack trace. Every vector is
 * built so that it fails before the GPU starts (no valid attention input; generate never gets a
 * storyboard the fixture model accepts). Most vectors run in-process through main() (where a bug
 * would surface as a rethrown exception); a few, and the named cases, as child processes, which
 * cost a Node start-up each (~0.6 s).
 */
import { execFile } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it, vi } from 'vitest';
import { main } from '../../src/cli/main.ts';
import { MAX_STORYBOARD_BYTES } from '../../src/model/limits.ts';
import { MODEL_DIR } from '../model/fixture.ts';

const dir = mkdtempSync(join(tmpdir(), 'moc-cli-fuzz-'));
const put = (name: string, data: string | Uint8Array): string => {
  writeFileSync(join(dir, name), data);
  return join(dir, name);
};
const brokenModel = join(dir, 'broken-model');
cpSync(MODEL_DIR, brokenModel, { recursive: true });
writeFileSync(join(brokenModel, 'config.json'), '{"name": "x"');
const hugeManifest = join(dir, 'huge-manifest-model');
cpSync(MODEL_DIR, hugeManifest, { recursive: true });
const mf = JSON.parse(readFileSync(join(hugeManifest, 'manifest.json'), 'utf8')) as {
  files: Record<string, { bytes: number }>;
};
mf.files['model.safetensors'].bytes = 2 ** 45;
writeFileSync(join(hugeManifest, 'manifest.json'), JSON.stringify(mf));
mkdirSync(join(dir, 'a-folder'));

const paths = {
  missing: join(dir, 'missing.json'),
  folder: join(dir, 'a-folder'),
  devZero: '/dev/zero',
  devNull: '/dev/null',
  junk: put(
    'junk.bin',
    Uint8Array.from({ length: 300 }, (_, i) => (i * 37) % 256),
  ),
  empty: put('empty.json', ''),
  notJson: put('bad.json', '{"version": 1, "shots": [\n'),
  wrongSchema: put('wrong.json', JSON.stringify({ version: 2, globalCaption: 'x', shots: [] })),
  unknownWords: put(
    'words.json',
    JSON.stringify({
      version: 1,
      globalCaption: 'Character 1 is a red star.',
      shots: [{ caption: 'a zeppelin over Paris', frames: 1, seed: 0 }],
    }),
  ),
  oversized: (() => {
    const p = put('oversized.json', '');
    truncateSync(p, MAX_STORYBOARD_BYTES + 1); // sparse: costs no disk
    return p;
  })(),
  newline: put('line\nbreak.safetensors', 'x'),
};
const models = [MODEL_DIR, brokenModel, hugeManifest, paths.missing, paths.folder, paths.devNull];

const value = fc.oneof(
  fc.constantFrom(
    '0',
    '-1',
    '1',
    '2.5',
    '1e400',
    'NaN',
    '',
    ' ',
    'moc',
    'dense',
    'shot',
    'sparse',
    '99999999999999999999',
    '--',
    '-',
  ),
  fc.string({ maxLength: 8 }),
);
const path = fc.oneof(
  fc.constantFrom(...Object.values(paths)),
  fc.string({ minLength: 1, maxLength: 10 }).filter((s) => !s.startsWith('-')),
);
const flag = (names: string[]): fc.Arbitrary<string[]> =>
  fc.oneof(
    fc.tuple(fc.constantFrom(...names), value).map(([n, v]) => [n, v]),
    fc.constantFrom(...names).map((n) => [n]),
    fc.tuple(fc.constantFrom(...names), value).map(([n, v]) => [`${n}=${v}`]),
    fc.constantFrom('--nope', '-x', '--help=3', '--cpu=1').map((f) => [f]),
  );

const generateArgs = fc
  .record({
    board: fc.option(path, { nil: undefined }),
    extraPositional: fc.boolean(),
    out: fc.option(fc.constant(join(dir, 'out')), { nil: undefined }),
    model: fc.option(fc.constantFrom(...models), { nil: undefined }),
    flags: fc.array(
      flag(['--attention', '--top-k', '--chunk-frames', '--steps', '--guidance', '--seed', '--trace-every']),
      { maxLength: 3 },
    ),
  })
  .map((r) => [
    ...(r.board ? [r.board] : []),
    ...(r.extraPositional ? ['extra'] : []),
    ...(r.out ? ['--out', r.out] : []),
    ...(r.model ? ['--model', r.model] : []),
    ...r.flags.flat(),
  ]);

const attentionArgs = fc
  .record({
    input: fc.option(path, { nil: undefined }),
    out: fc.option(fc.constantFrom(join(dir, 'o.safetensors'), paths.folder), { nil: undefined }),
    flags: fc.array(flag(['--cpu', '--in', '--out']), { maxLength: 2 }),
  })
  .map((r) => [...(r.input ? ['--in', r.input] : []), ...(r.out ? ['--out', r.out] : []), ...r.flags.flat()]);

function moc(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((done) => {
    execFile(
      process.execPath,
      ['bin/moc.mjs', ...args],
      { cwd: process.cwd(), timeout: 60_000 },
      (err, stdout, stderr) => {
        done({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
      },
    );
  });
}

/** In-process: main() returns non-zero after exactly one console.error line; anything thrown is a bug. */
async function userErrorInProcess(command: string, args: string[]): Promise<void> {
  if (args.some((a) => a === '--help' || a === '-h')) return;
  const err = vi.spyOn(console, 'error').mockImplementation(() => undefined);
  const log = vi.spyOn(console, 'log').mockImplementation(() => undefined);
  try {
    const code = await main([command, ...args]);
    const what = `moc ${command} ${JSON.stringify(args)} → ${code}: ${JSON.stringify(err.mock.calls)}`;
    expect(code, what).not.toBe(0);
    expect(err, what).toHaveBeenCalledTimes(1);
    const text = String(err.mock.calls[0][0]);
    expect(text, what).not.toContain('\n');
    expect(text, what).toMatch(new RegExp(`^moc ${command}: \\S`));
  } finally {
    err.mockRestore();
    log.mockRestore();
  }
}

async function userError(command: string, args: string[]): Promise<void> {
  if (args.some((a) => a === '--help' || a === '-h')) return; // prints usage and exits 0
  const r = await moc([command, ...args]);
  const lines = r.stderr.trimEnd().split('\n');
  const what = `moc ${command} ${JSON.stringify(args)} → ${r.code}\n${r.stderr}`;
  expect(r.code, what).not.toBe(0);
  expect(r.stderr, what).not.toMatch(/\n\s+at |Error:.*\n.*node:/);
  expect(lines, what).toHaveLength(1);
  expect(lines[0], what).toMatch(new RegExp(`^moc ${command}: \\S`));
}

describe('fuzz: the moc command line', () => {
  it('in-process: random argument vectors give one line and a non-zero exit', { timeout: 60_000 }, async () => {
    await fc.assert(
      fc.asyncProperty(attentionArgs, (a) => userErrorInProcess('attention', a)),
      { numRuns: 150 },
    );
    await fc.assert(
      fc.asyncProperty(generateArgs, (a) => userErrorInProcess('generate', a)),
      { numRuns: 150 },
    );
  });

  it.concurrent(
    'spawned: random argument vectors give one line on stderr, no stack, a non-zero exit',
    { timeout: 60_000 },
    async () => {
      await fc.assert(
        fc.asyncProperty(attentionArgs, (a) => userError('attention', a)),
        { numRuns: 3 },
      );
      await fc.assert(
        fc.asyncProperty(generateArgs, (a) => userError('generate', a)),
        { numRuns: 5 },
      );
    },
  );

  it.concurrent(
    'named cases: devices, folders, oversized files, huge manifests, odd paths',
    { timeout: 60_000 },
    async () => {
      const out = join(dir, 'out');
      const cases: Array<[string, string[], RegExp]> = [
        ['generate', [paths.devZero, '--out', out, '--model', MODEL_DIR], /dev\/zero: not a regular file/],
        [
          'generate',
          [paths.oversized, '--out', out, '--model', MODEL_DIR],
          /oversized\.json is 1\.0 MiB, more than the limit of 1\.0 MiB/,
        ],
        ['generate', [paths.folder, '--out', out, '--model', MODEL_DIR], /cannot read .*a-folder: EISDIR/],
        [
          'generate',
          [paths.unknownWords, '--out', out, '--model', hugeManifest],
          /model\.safetensors \(by manifest\.json\) is 32768\.00 GiB, more than the limit/,
        ],
        [
          'attention',
          ['--in', paths.newline, '--out', join(dir, 'o.safetensors')],
          /line\\u000abreak\.safetensors: not a safetensors file/,
        ],
        ['attention', ['--in', paths.devZero, '--out', join(dir, 'o.safetensors')], /dev\/zero: not a regular file/],
      ];
      for (const [cmd, args, re] of cases) {
        const r = await moc([cmd, ...args]);
        expect(r.code, r.stderr).toBe(1);
        expect(r.stderr.trimEnd().split('\n'), r.stderr).toHaveLength(1);
        expect(r.stderr).toMatch(re);
      }
      const u = await moc(['frobnicate']);
      expect(u.code).toBe(2);
      expect(u.stderr.trimEnd().split('\n')).toEqual([
        "moc: unknown command 'frobnicate'; commands: bench, attention, generate (moc --help)",
      ]);
    },
  );
});
