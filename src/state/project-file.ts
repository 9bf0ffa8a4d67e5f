/**
 * The project file: one JSON file that carries a whole project out of the browser and back —
 * the storyboard (with the studio's shot ids), the generation settings, every version of every
 * shot with its pixels, which version each shot keeps, and the routing traces of the last run
 * when the store has them. Typed arrays (pixels, traces) are written as base64 under
 * `{"$typed": "<Array type>", "b64": "…"}` so the file stays plain JSON.
 *
 * Reading checks everything a bad file could break (format, version, the storyboard through the
 * same parser as a storyboard import, each version's pixel count) and names the first problem.
 */
import { parseStoryboard } from '../model/storyboard.ts';
import type { StepTrace } from '../model/api.ts';
import type { Board } from './board-ops.ts';
import { migrateSettings } from './persist.ts';
import type { GenerationSettings, TakeMeta } from './types.ts';

export const PROJECT_FORMAT = 'moc-studio-project';
export const PROJECT_VERSION = 1;
/** The largest project file read (pixels are most of it). */
export const MAX_PROJECT_BYTES = 512 * 1024 * 1024;

/** A project as the studio holds it. */
export interface Project {
  name: string;
  board: Board;
  settings: GenerationSettings;
  /** Every version, with its pixels (RGBA [frames, height, width, 4]). */
  takes: Array<{ meta: TakeMeta; pixels: Uint8ClampedArray }>;
  chosen: Record<string, string>;
  /** The last run's routing traces, if any (with the shot ids and captions they were made for). */
  routing: { traces: StepTrace[]; shotIds: string[]; captions: string[] } | null;
}

export class ProjectFileError extends Error {
  override name = 'ProjectFileError';
}

const TYPED = {
  Uint8ClampedArray,
  Uint8Array,
  Int32Array,
  Uint32Array,
  Float32Array,
  Float64Array,
  Int16Array,
  Uint16Array,
  Int8Array,
} as const;
type TypedName = keyof typeof TYPED;

function toBase64(bytes: Uint8Array): string {
  let s = '';
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

function fromBase64(b64: string): Uint8Array<ArrayBuffer> {
  const s = atob(b64);
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

function replacer(_key: string, value: unknown): unknown {
  if (ArrayBuffer.isView(value) && !(value instanceof DataView)) {
    const name = value.constructor.name as TypedName;
    if (name in TYPED)
      return { $typed: name, b64: toBase64(new Uint8Array(value.buffer, value.byteOffset, value.byteLength)) };
  }
  return value;
}

function reviver(_key: string, value: unknown): unknown {
  const v = value as { $typed?: unknown; b64?: unknown } | null;
  if (v && typeof v === 'object' && typeof v.$typed === 'string' && typeof v.b64 === 'string') {
    const Ctor = TYPED[v.$typed as TypedName];
    if (!Ctor) throw new ProjectFileError(`an array of unknown type ${JSON.stringify(v.$typed)}`);
    const bytes = fromBase64(v.b64);
    if (bytes.byteLength % Ctor.BYTES_PER_ELEMENT)
      throw new ProjectFileError(`a ${v.$typed} of ${bytes.byteLength} bytes`);
    return new Ctor(bytes.buffer, 0, bytes.byteLength / Ctor.BYTES_PER_ELEMENT);
  }
  return value;
}

/** The project as the text of a project file. */
export function writeProject(p: Project, now = Date.now()): string {
  const file = {
    format: PROJECT_FORMAT,
    version: PROJECT_VERSION,
    name: p.name,
    savedAt: now,
    board: p.board.board,
    shotIds: p.board.shotIds,
    settings: p.settings,
    chosen: p.chosen,
    takes: p.takes,
    routing: p.routing,
  };
  return JSON.stringify(file, replacer);
}

/** A project read back from the text of a project file. @throws ProjectFileError naming the first problem. */
export function readProject(text: string): Project {
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(text, reviver) as Record<string, unknown>;
  } catch (e) {
    throw e instanceof ProjectFileError ? e : new ProjectFileError(`it is not JSON (${(e as Error).message})`);
  }
  if (!raw || typeof raw !== 'object' || raw.format !== PROJECT_FORMAT)
    throw new ProjectFileError(`it is not a MoC Studio project file (no "format": "${PROJECT_FORMAT}")`);
  if (raw.version !== PROJECT_VERSION)
    throw new ProjectFileError(
      `it has version ${JSON.stringify(raw.version)}; this studio reads version ${PROJECT_VERSION}`,
    );
  let board;
  try {
    board = parseStoryboard(raw.board);
  } catch (e) {
    throw new ProjectFileError(`its storyboard is invalid: ${(e as Error).message.split('\n')[0]}`);
  }
  const shotIds = raw.shotIds;
  if (
    !Array.isArray(shotIds) ||
    shotIds.length !== board.shots.length ||
    !shotIds.every((id) => typeof id === 'string') ||
    new Set(shotIds).size !== shotIds.length
  ) {
    throw new ProjectFileError('its "shotIds" do not match its shots (one distinct id per shot)');
  }
  const takes: Project['takes'] = [];
  for (const [i, t] of (Array.isArray(raw.takes) ? raw.takes : []).entries()) {
    const meta = (t as { meta?: TakeMeta })?.meta;
    const pixels = (t as { pixels?: unknown })?.pixels;
    if (!meta || typeof meta.id !== 'string' || typeof meta.shotId !== 'string')
      throw new ProjectFileError(`version ${i + 1} has no id or shot`);
    if (!(pixels instanceof Uint8ClampedArray)) throw new ProjectFileError(`version ${meta.id} has no pixels`);
    if (
      !(meta.frames > 0 && meta.width > 0 && meta.height > 0) ||
      pixels.length !== meta.frames * meta.width * meta.height * 4
    ) {
      throw new ProjectFileError(
        `version ${meta.id} has ${pixels.length} bytes of pixels, not ${meta.frames}×${meta.height}×${meta.width}×4`,
      );
    }
    if (shotIds.includes(meta.shotId)) takes.push({ meta, pixels }); // versions of shots no longer on the board are left behind
  }
  const chosen: Record<string, string> = {};
  const rawChosen = (raw.chosen ?? {}) as Record<string, unknown>;
  for (const id of shotIds as string[]) {
    const mine = takes.filter((t) => t.meta.shotId === id);
    if (!mine.length) continue;
    chosen[id] = mine.some((t) => t.meta.id === rawChosen[id])
      ? (rawChosen[id] as string)
      : mine[mine.length - 1].meta.id;
  }
  const r = raw.routing as Project['routing'];
  const routing = r && Array.isArray(r.traces) && Array.isArray(r.shotIds) && Array.isArray(r.captions) ? r : null;
  return {
    name: typeof raw.name === 'string' && raw.name.trim() ? raw.name.trim() : 'Imported project',
    board: { board, shotIds: shotIds as string[] },
    settings: migrateSettings((raw.settings ?? {}) as Partial<GenerationSettings>),
    takes,
    chosen,
    routing,
  };
}
