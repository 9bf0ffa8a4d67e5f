/**
 * Size caps on every file the studio and the CLI read, so a wrong file (a video picked by
 * mistake, /dev/zero, a manifest that claims terabytes) is refused with one line before it is
 * read into memory, instead of exhausting it.
 */
import { InputError } from './errors.ts';

const MiB = 1024 * 1024;

/** A storyboard (JSON): 32 shots of captions fit in a few KiB. */
export const MAX_STORYBOARD_BYTES = 1 * MiB;
/** manifest.json, config.json, vocab.json of a model folder, and the studio's JSON indexes. */
export const MAX_JSON_BYTES = 16 * MiB;
/** model.safetensors (2 GiB: what one ArrayBuffer and Node's readFile hold everywhere). */
export const MAX_WEIGHTS_BYTES = 2048 * MiB - 1;
/** An attention exchange file (`moc attention --in`). */
export const MAX_EXCHANGE_BYTES = 1024 * MiB;

/** The cap for a file of a model folder, by name. */
export function modelFileCap(name: string): number {
  return name.endsWith('.safetensors') ? MAX_WEIGHTS_BYTES : MAX_JSON_BYTES;
}

/** A size for people: 12 → "12 bytes", 1048577 → "1.0 MiB" (the one formatter; the UI uses it too). */
export function formatBytes(n: number): string {
  if (n < 1024) return `${n} bytes`;
  if (n < MiB) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 * MiB) return `${(n / MiB).toFixed(1)} MiB`;
  return `${(n / 1024 / MiB).toFixed(2)} GiB`;
}

/** The one-line refusal of a file over its cap (a message; callers wrap it in their error type). */
export function tooLargeMessage(what: string, bytes: number, cap: number): string {
  return `${what} is ${formatBytes(bytes)}, more than the limit of ${formatBytes(cap)} for this kind of file`;
}

/** @throws InputError when `bytes` exceeds `cap`. */
export function checkSize(what: string, bytes: number, cap: number): void {
  if (bytes > cap) throw new InputError(tooLargeMessage(what, bytes, cap));
}
