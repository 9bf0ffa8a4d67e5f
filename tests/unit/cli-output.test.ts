/**
 * `moc generate --out DIR` is all-or-nothing (src/cli/files.ts OutputFolder): a temporary folder
 * beside DIR renamed at the end, non-empty folders refused unless --replace, no writing through
 * links, one run at a time per folder, and a full disk leaves nothing behind. The refusals that
 * come before the GPU starts are also checked through `main()`.
 */
import {
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type * as FsPromises from 'node:fs/promises';

const fsState = vi.hoisted(() => ({ fullAfter: Infinity, written: 0 }));
vi.mock('node:fs/promises', async (orig) => {
  const real = await orig<typeof FsPromises>();
  return {
    ...real,
    // a disk that fills up after `fullAfter` bytes: the file that crosses it is left truncated
    writeFile: async (path: string, data: Uint8Array | string, opts?: object) => {
      const bytes = typeof data === 'string' ? Buffer.from(data) : data;
      const room = fsState.fullAfter - fsState.written;
      if (bytes.length > room) {
        await real.writeFile(path, bytes.subarray(0, Math.max(0, room)), opts);
        fsState.written = fsState.fullAfter;
        throw Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' });
      }
      fsState.written += bytes.length;
      return real.writeFile(path, bytes, opts);
    },
  };
});

const { OutputFolder } = await import('../../src/cli/files.ts');
const { main } = await import('../../src/cli/main.ts');
const { MODEL_DIR } = await import('../model/fixture.ts');

const root = mkdtempSync(join(tmpdir(), 'moc-out-'));
let n = 0;
const fresh = (): string => join(root, `case-${n++}`);

afterEach(() => {
  fsState.fullAfter = Infinity;
  fsState.written = 0;
});

async function oneLine(p: Promise<unknown>, re: RegExp): Promise<void> {
  const e = await p.then(
    () => undefined,
    (x: unknown) => x as Error,
  );
  expect(e, 'expected a refusal').toBeInstanceOf(Error);
  expect(e!.name).toBe('InputError');
  expect(e!.message).not.toContain('\n');
  expect(e!.message).toMatch(re);
}

/** Everything beside `out` except the entries listed (no temporary folders or locks left). */
const litter = (parent: string, keep: string[]): string[] => readdirSync(parent).filter((f) => !keep.includes(f));

describe('OutputFolder', () => {
  it('writes into a temporary folder and renames it to out at the end', async () => {
    const parent = fresh();
    const out = join(parent, 'a', 'b');
    const f = await OutputFolder.begin(out);
    await f.write('shot-00/frame-000.png', new Uint8Array([1, 2, 3]));
    await f.write('timing.json', '{}');
    expect(existsSync(out)).toBe(false); // nothing visible before the end
    await f.commit();
    await f.discard(); // after commit: a no-op
    expect(readdirSync(out).sort()).toEqual(['shot-00', 'timing.json']);
    expect([...readFileSync(join(out, 'shot-00/frame-000.png'))]).toEqual([1, 2, 3]);
    expect(lstatSync(out).mode & 0o777).toBe(0o755);
    expect(litter(join(parent, 'a'), ['b'])).toEqual([]);
  });

  it('refuses a non-empty folder unless asked to replace it, and then replaces it whole', async () => {
    const out = fresh();
    mkdirSync(join(out, 'shot-07'), { recursive: true });
    writeFileSync(join(out, 'shot-07', 'frame-000.png'), 'old');
    writeFileSync(join(out, 'notes.txt'), 'old');
    await oneLine(
      OutputFolder.begin(out),
      /^--out .* is not empty \(2 entries\); name a new folder, or pass --replace to replace it$/,
    );
    const f = await OutputFolder.begin(out, { replace: true });
    await f.write('shot-00/frame-000.png', 'new');
    await f.commit();
    expect(readdirSync(out)).toEqual(['shot-00']); // no frames of the earlier run mixed in
    expect(
      litter(
        root,
        readdirSync(root).filter((x) => !x.startsWith('.')),
      ),
    ).toEqual([]);
  });

  it('an empty existing folder is used without --replace', async () => {
    const out = fresh();
    mkdirSync(out);
    const f = await OutputFolder.begin(out);
    await f.write('x', 'y');
    await f.commit();
    expect(readdirSync(out)).toEqual(['x']);
  });

  it('refuses a file, a link, the root and places it cannot write, in one line each', async () => {
    const file = fresh();
    writeFileSync(file, 'keep');
    await oneLine(OutputFolder.begin(file), /^--out .* exists and is not a folder$/);
    const link = fresh();
    mkdirSync(`${link}-target`);
    symlinkSync(`${link}-target`, link);
    await oneLine(OutputFolder.begin(link, { replace: true }), /is a symbolic link; name the folder itself$/);
    await oneLine(OutputFolder.begin('/'), /name a folder below it, not the root$/);
    await oneLine(OutputFolder.begin(join(file, 'sub')), /^--out .*: cannot use it: ENOTDIR$/);
    // Node's mkdir({ recursive: true }) never returns for these (it was the old behaviour)
    await oneLine(
      OutputFolder.begin('/proc/x'),
      /^--out \/proc\/x: cannot (write beside it|create a folder beside it): E[A-Z]+$/,
    );
    await oneLine(
      OutputFolder.begin('/proc/x/y/z'),
      /^--out \/proc\/x\/y\/z: cannot create the folder \/proc\/x\/y: ENOENT$/,
    );
    expect(readFileSync(file, 'utf8')).toBe('keep');
  });

  it('never writes through a link planted in the folder it replaces', async () => {
    const out = fresh();
    const victim = `${out}-victim.png`;
    writeFileSync(victim, 'victim');
    mkdirSync(join(out, 'shot-00'), { recursive: true });
    symlinkSync(victim, join(out, 'shot-00', 'frame-000.png'));
    const f = await OutputFolder.begin(out, { replace: true });
    await f.write('shot-00/frame-000.png', 'frame');
    await f.commit();
    expect(readFileSync(victim, 'utf8')).toBe('victim');
    expect(lstatSync(join(out, 'shot-00', 'frame-000.png')).isFile()).toBe(true);
  });

  it('lets one run at a time write a folder; a lock of a dead process is taken over', async () => {
    const out = fresh();
    const a = await OutputFolder.begin(out);
    await oneLine(
      OutputFolder.begin(out),
      new RegExp(
        `^another moc run \\(pid ${process.pid}\\) is writing .*; wait for it, or delete .*\\.moc-lock if it is not running$`,
      ),
    );
    await oneLine(OutputFolder.begin(out, { replace: true }), /^another moc run/);
    await a.write('x', 'a');
    await a.commit();
    const out2 = fresh();
    writeFileSync(join(root, `.${out2.split('/').pop()}.moc-lock`), '999999999'); // no such process
    const b = await OutputFolder.begin(out2);
    await b.write('x', 'b');
    await b.commit();
    expect(readFileSync(join(out2, 'x'), 'utf8')).toBe('b');
  });

  it('something else filling out meanwhile: the run fails and names where its output is', async () => {
    const out = fresh();
    const f = await OutputFolder.begin(out);
    await f.write('x', 'mine');
    mkdirSync(out);
    writeFileSync(join(out, 'theirs'), 'theirs');
    await oneLine(
      f.commit(),
      /^cannot move the output to .*: (ENOTEMPTY|EEXIST) \(something else wrote there meanwhile\); this run's output is in .*\.moc-tmp-\w+$/,
    );
    expect(readdirSync(out)).toEqual(['theirs']);
    expect(readFileSync(join(f.tmp, 'x'), 'utf8')).toBe('mine');
  });

  it('a full disk: one line, out left as it was, no truncated file anywhere', async () => {
    const out = fresh();
    mkdirSync(out);
    writeFileSync(join(out, 'earlier.png'), 'earlier');
    const f = await OutputFolder.begin(out, { replace: true });
    fsState.fullAfter = fsState.written + 10;
    await f.write('a', '12345');
    await oneLine(
      f.write('shot-00/frame-000.png', new Uint8Array(100)),
      /^cannot write shot-00\/frame-000\.png for .*: ENOSPC \(the disk is full\); .* was left as it was$/,
    );
    await f.discard();
    expect(readdirSync(out)).toEqual(['earlier.png']);
    expect(existsSync(f.tmp)).toBe(false);
    expect(readdirSync(root).filter((x) => x.includes(out.split('/').pop()!) && x.startsWith('.'))).toEqual([]);
  });
});

describe('moc generate --out (refused before the GPU starts)', () => {
  const board = join(root, 'board.json');
  writeFileSync(
    board,
    JSON.stringify({
      version: 1,
      globalCaption: 'Character 1 is a red star.',
      shots: [{ caption: 'Character 1 spins, close-up.', frames: 1, seed: 4 }],
    }),
  );

  async function refused(out: string, re: RegExp, ...extra: string[]): Promise<void> {
    const err = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    try {
      expect(await main(['generate', board, '--out', out, '--model', MODEL_DIR, ...extra])).toBe(1);
      expect(err).toHaveBeenCalledTimes(1);
      expect(String(err.mock.calls[0][0])).toMatch(re);
    } finally {
      err.mockRestore();
    }
  }

  it('a non-empty folder, a file, /proc/x: one line each, nothing changed', { timeout: 20_000 }, async () => {
    const used = fresh();
    mkdirSync(used);
    writeFileSync(join(used, 'frame-000.png'), 'earlier');
    await refused(
      used,
      /^moc generate: --out .* is not empty \(1 entry\); name a new folder, or pass --replace to replace it$/,
    );
    expect(readdirSync(used)).toEqual(['frame-000.png']);
    const file = fresh();
    writeFileSync(file, 'keep');
    await refused(file, /^moc generate: --out .* exists and is not a folder$/, '--replace');
    await refused('/proc/x', /^moc generate: --out \/proc\/x: cannot /);
    expect(readFileSync(file, 'utf8')).toBe('keep');
  });
});
