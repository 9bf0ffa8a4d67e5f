/**
 * The model's answer to "is this the user's fault?": every error about input (a file, a
 * storyboard, a caption, a request option, a chunk layout) is an InputError, whose message is one
 * line naming the input and what is wrong. Callers test `instanceof InputError` once: the worker
 * maps it to a protocol code (worker/errors.ts inputToWorkerError), the CLI prints it and exits 1.
 * Anything else is a bug or an engine failure and keeps its stack.
 */

/** What oneLine escapes. */
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const UNPRINTABLE = /[\u0000-\u001f\u007f-\u009f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]/g;

/**
 * One line of text: line breaks and other control characters (C0 and C1: terminal escape sequences
 * start with ESC or CSI), zero-width and bidirectional-override characters (which file names,
 * model names, captions, tensor names and metadata keys can carry into a message) become \uXXXX
 * escapes.
 */
export function oneLine(text: string): string {
  return text.replace(UNPRINTABLE, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** Bad input from a file or a person; one line naming the input and what is wrong. */
export class InputError extends Error {
  constructor(message: string) {
    super(oneLine(message));
    this.name = 'InputError';
  }
}
