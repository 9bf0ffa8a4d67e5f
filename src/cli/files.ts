/** Reading the CLI's input files with a size cap (src/model/limits.ts) and one-line refusals. */
import { open } from 'node:fs/promises';
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
