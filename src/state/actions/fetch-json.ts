/** Fetching the studio's static JSON files (model and storyboard indexes, samples). */

/** Why a static file could not be had, in words fit for the UI. */
export class MissingFileError extends Error {
  override name = 'MissingFileError';
}

/** The studio's JSON indexes and samples are a few KiB; anything past this is the wrong file. */
export const MAX_FETCHED_JSON_BYTES = 16 * 1024 * 1024;

/**
 * GETs `url` (at most MAX_FETCHED_JSON_BYTES) and parses it as JSON. A 404, or an HTML page where JSON was expected (what a
 * single-page-app server sends for a file that is not there), is "not there".
 * @throws MissingFileError naming `what` and the reason.
 */
export async function fetchJson(url: string | URL, what: string): Promise<unknown> {
  let res: Response;
  try {
    res = await fetch(url, { cache: 'no-cache' });
  } catch (e) {
    throw new MissingFileError(`${what} could not be fetched (${(e as Error).message})`);
  }
  if (res.status === 404 || (res.ok && (res.headers.get('content-type') ?? '').includes('text/html')))
    throw new MissingFileError(`${what} is not there`);
  if (!res.ok) throw new MissingFileError(`${what} answered HTTP ${res.status}`);
  if (Number(res.headers.get('content-length') ?? 0) > MAX_FETCHED_JSON_BYTES) {
    await res.body?.cancel().catch(() => undefined);
    throw new MissingFileError(`${what} is larger than ${MAX_FETCHED_JSON_BYTES / 1024 / 1024} MiB`);
  }
  const text = await res.text();
  if (text.length > MAX_FETCHED_JSON_BYTES)
    throw new MissingFileError(`${what} is larger than ${MAX_FETCHED_JSON_BYTES / 1024 / 1024} MiB`);
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new MissingFileError(`${what} is not valid JSON (${(e as Error).message})`);
  }
}
