/**
 * The CLI's files: reading inputs with a size cap (src/model/limits.ts), and output folders that
 * are all-or-nothing (OutputFolder). Every refusal is one line.
 */
import { chmod, lstat, mkdir, mkdtemp, open, readdir, rename, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { InputError } from '../model/errors.ts';
import { checkSize } from '../model/limits.ts';

/**
 * Reads a regular file of at most `cap` bytes. Devices, FIFOs and folders are refused (reading
 * /dev/zero would never end), and so is a file that grows past its size while being read.
 * @throws InputError `cannot read PATH: CODE`, `PATH is not a regular file`, or `PATH is N MiB, more than …`.
 */
export async function readFileCapped(path: string, cap: number): Promise<Uint8Array> {
  let fh;
  try {
    fh = await open(path, 'r');
  } catch (e) {
    throw new InputError(`cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  try {
    const st = await fh.stat();
    if (st.isDirectory()) throw new InputError(`cannot read ${path}: EISDIR (a folder, not a file)`);
    if (!st.isFile()) throw new InputError(`cannot read ${path}: not a regular file`);
    checkSize(path, st.size, cap);
    const out = new Uint8Array(st.size);
    let at = 0;
    while (at < out.length) {
      const { bytesRead } = await fh.read(out, at, out.length - at, at);
      if (bytesRead === 0) break;
      at += bytesRead;
    }
    if (at !== out.length) throw new InputError(`cannot read ${path}: it changed while being read`);
    return out;
  } finally {
    await fh.close();
  }
}

const code = (e: unknown): string => (e as NodeJS.ErrnoException).code ?? (e as Error).message;

/**
 * mkdir -p without Node's `recursive`, which never returns for paths under /proc (mkdir keeps
 * answering ENOENT there): one mkdir per missing level, so it ends after at most one try each.
 */
async function makeFolders(path: string): Promise<void> {
  try {
    await mkdir(path);
  } catch (e) {
    const c = code(e);
    if (c === 'EEXIST') {
      if (!(await stat(path)).isDirectory()) throw Object.assign(new Error('ENOTDIR'), { code: 'ENOTDIR' });
      return;
    }
    if (c !== 'ENOENT' || dirname(path) === path) throw e;
    await makeFolders(dirname(path));
    await mkdir(path).catch((e2: unknown) => {
      if (code(e2) !== 'EEXIST') throw e2;
    });
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return code(e) === 'EPERM';
  }
}

/**
 * An output folder that is all-or-nothing. `begin` checks `--out` and, beside it, takes a lock
 * (`.NAME.moc-lock`, holding the pid) and makes a fresh private temporary folder
 * (`.NAME.moc-tmp-XXXXXX`); `write` puts files there, never through an existing file or link
 * (O_EXCL); `commit` renames it to `out` (with `replace`, the old folder is moved aside first and
 * deleted after, so `out` never mixes two runs); `discard` deletes it. A failed write, Ctrl-C or
 * any error leaves `out` as it was.
 */
export class OutputFolder {
  private done = false;

  private constructor(
    readonly out: string,
    private readonly abs: string,
    readonly tmp: string,
    private readonly lock: string,
    private readonly replace: boolean,
  ) {}

  /**
   * @throws InputError when `out` is a file or a link, not empty (unless `replace`), or when
   * nothing can be created beside it; or when another live run holds its lock.
   */
  static async begin(out: string, opts: { replace?: boolean; flag?: string } = {}): Promise<OutputFolder> {
    const flag = opts.flag ?? '--out';
    const abs = resolve(out);
    const parent = dirname(abs);
    const name = basename(abs);
    if (parent === abs) throw new InputError(`${flag} ${out}: name a folder below it, not the root`);
    const st = await lstat(abs).catch((e: unknown) => {
      if (code(e) === 'ENOENT') return undefined;
      throw new InputError(`${flag} ${out}: cannot use it: ${code(e)}`);
    });
    if (st?.isSymbolicLink()) throw new InputError(`${flag} ${out} is a symbolic link; name the folder itself`);
    if (st && !st.isDirectory()) throw new InputError(`${flag} ${out} exists and is not a folder`);
    if (st && !opts.replace) {
      const n = (
        await readdir(abs).catch((e: unknown) => {
          throw new InputError(`${flag} ${out}: cannot list it: ${code(e)}`);
        })
      ).length;
      if (n > 0)
        throw new InputError(
          `${flag} ${out} is not empty (${n} entr${n === 1 ? 'y' : 'ies'}); name a new folder, or pass --replace to replace it`,
        );
    }
    try {
      await makeFolders(parent);
    } catch (e) {
      throw new InputError(`${flag} ${out}: cannot create the folder ${parent}: ${code(e)}`);
    }
    const lock = join(parent, `.${name}.moc-lock`);
    await takeLock(lock, flag, out);
    try {
      const tmp = await mkdtemp(join(parent, `.${name}.moc-tmp-`));
      await chmod(tmp, 0o755); // mkdtemp makes it private; the output folder gets the usual mode
      return new OutputFolder(out, abs, tmp, lock, opts.replace ?? false);
    } catch (e) {
      await unlink(lock).catch(() => undefined);
      throw new InputError(`${flag} ${out}: cannot create a folder beside it: ${code(e)}`);
    }
  }

  /** Writes `rel` (e.g. `shot-00/frame-000.png`) into the temporary folder. @throws InputError (disk full, …). */
  async write(rel: string, data: Uint8Array | string): Promise<void> {
    const path = join(this.tmp, rel);
    try {
      if (dirname(path) !== this.tmp) {
        await mkdir(dirname(path)).catch((e: unknown) => {
          if (code(e) !== 'EEXIST') throw e;
        });
      }
      await writeFile(path, data, { flag: 'wx' });
    } catch (e) {
      const c = code(e);
      throw new InputError(
        `cannot write ${rel} for ${this.out}: ${c}${c === 'ENOSPC' ? ' (the disk is full)' : ''}; ${this.out} was left as it was`,
      );
    }
  }

  /** Moves the finished folder to `out`. @throws InputError when `out` was filled meanwhile (the output stays in `tmp`, named). */
  async commit(): Promise<void> {
    let aside: string | undefined;
    try {
      if (this.replace && (await readdir(this.abs).catch(() => [])).length > 0) {
        aside = await mkdtemp(join(dirname(this.abs), `.${basename(this.abs)}.moc-old-`));
        await rename(this.abs, aside); // onto the empty folder mkdtemp made
      }
      try {
        await rename(this.tmp, this.abs);
      } catch (e) {
        if (aside) await rename(aside, this.abs);
        aside = undefined;
        throw e;
      }
      this.done = true;
    } catch (e) {
      this.done = true; // keep tmp: it holds the only copy of this run's output
      await this.unlock();
      throw new InputError(
        `cannot move the output to ${this.out}: ${code(e)}${['ENOTEMPTY', 'EEXIST'].includes(code(e)) ? ' (something else wrote there meanwhile)' : ''}; this run's output is in ${this.tmp}`,
      );
    }
    if (aside) await rm(aside, { recursive: true, force: true });
    await this.unlock();
  }

  /** Deletes the temporary folder (after an error or Ctrl-C); `out` is untouched. */
  async discard(): Promise<void> {
    if (this.done) return;
    this.done = true;
    await rm(this.tmp, { recursive: true, force: true }).catch(() => undefined);
    await this.unlock();
  }

  private async unlock(): Promise<void> {
    await unlink(this.lock).catch(() => undefined);
  }
}

/** Creates `lock` holding this pid; a lock of a process that is gone is taken over once. */
async function takeLock(lock: string, flag: string, out: string): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      await writeFile(lock, String(process.pid), { flag: 'wx' });
      return;
    } catch (e) {
      if (code(e) !== 'EEXIST') throw new InputError(`${flag} ${out}: cannot write beside it: ${code(e)}`);
    }
    const pid = Number(new TextDecoder().decode(await readFileCapped(lock, 64).catch(() => new Uint8Array())).trim());
    if (Number.isInteger(pid) && pid > 0 && alive(pid)) {
      throw new InputError(
        `another moc run (pid ${pid}) is writing ${out}; wait for it, or delete ${lock} if it is not running`,
      );
    }
    if (attempt > 0)
      throw new InputError(`${flag} ${out}: cannot take the lock ${lock}; delete it if no moc run is writing there`);
    await unlink(lock).catch(() => undefined);
  }
}
