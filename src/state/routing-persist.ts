/**
 * The routing graph's memory across reloads: the traces of the last finished run, saved in
 * IndexedDB with the ids of the takes it made, so that after a reload the graph shows the run
 * whose shots are on the board instead of "No run yet".
 *
 * A database of its own (`moc-studio-routing`), apart from the autosave's (persist.ts): its
 * records are large and optional, and a failure to keep them must never touch the board or the
 * takes. Traces are typed arrays and go in as they are (structured clone). A run whose traces
 * would pass the budget is summarised: its last traced step is always kept, earlier steps from the
 * latest back while they fit; a run whose last step alone is too large is not kept (and the
 * record says why).
 */
import { openDB, type IDBPDatabase } from 'idb';
import type { AttentionOptions, LayerTrace, StepTrace } from '../model/api.ts';
import type { RoutingStats } from './slices/routing.ts';

export const ROUTING_DB_NAME = 'moc-studio-routing';
export const ROUTING_DB_VERSION = 1;
/** Record format: bump it and migrate in `readRoutingRecord` when the shape changes. */
export const ROUTING_FORMAT = 1;
/** Bytes of traces one run may keep, at most (less when the origin's quota is smaller: `routingBudget`). */
export const MAX_ROUTING_BYTES = 24 * 1024 * 1024;

export interface RoutingRecord {
  format: typeof ROUTING_FORMAT;
  /** The takes the run made: the record goes with them (nothing is shown once none is left). */
  takeIds: string[];
  /** Shot ids and captions of the run (chunk shot s → shotIds[s]). */
  shotIds: string[];
  captions: string[];
  attention: AttentionOptions;
  stats: RoutingStats;
  /** The kept steps, in step order (all, or the last ones when summarised). */
  traces: StepTrace[];
  /** Traced steps the run had (more than `traces.length` when summarised). */
  tracedSteps: number;
  savedAt: number;
}

/** Bytes a trace holds in typed arrays (what storing it costs, near enough). */
export function traceBytes(t: StepTrace): number {
  const c = t.chunks;
  let n = c.start.byteLength + c.end.byteLength + c.shot.byteLength + c.kind.byteLength + 32 * c.chunks.length;
  for (const l of t.layers) n += layerBytes(l);
  return n;
}

function layerBytes(l: LayerTrace): number {
  return (
    l.routes.start.byteLength +
    l.routes.to.byteLength +
    l.routes.count.byteLength +
    l.mandatory.byteLength +
    l.qMean.byteLength +
    l.desc.byteLength +
    l.sparsity.byteLength
  );
}

/**
 * The steps to keep within `budget` bytes: the last always (null when it alone is over the
 * budget), then earlier ones from the latest back while they fit; in step order.
 */
export function summariseTraces(traces: readonly StepTrace[], budget: number): StepTrace[] | null {
  const last = traces[traces.length - 1];
  if (!last) return [];
  let used = traceBytes(last);
  if (used > budget) return null;
  const kept = [last];
  for (let i = traces.length - 2; i >= 0; i--) {
    const b = traceBytes(traces[i]);
    if (used + b > budget) break;
    used += b;
    kept.unshift(traces[i]);
  }
  return kept;
}

/** The budget for one run's traces: MAX_ROUTING_BYTES, or a tenth of the storage left when that is less. */
export async function routingBudget(): Promise<number> {
  try {
    const est = await globalThis.navigator?.storage?.estimate?.();
    if (est?.quota !== undefined)
      return Math.max(0, Math.min(MAX_ROUTING_BYTES, Math.floor((est.quota - (est.usage ?? 0)) / 10)));
  } catch {
    // no estimate: the fixed budget
  }
  return MAX_ROUTING_BYTES;
}

let dbPromise: Promise<IDBPDatabase> | null = null;

function db(): Promise<IDBPDatabase> {
  dbPromise ??= openDB(ROUTING_DB_NAME, ROUTING_DB_VERSION, {
    upgrade(database, oldVersion) {
      if (oldVersion < 1) database.createObjectStore('runs');
    },
    blocking() {
      void dbPromise?.then((d) => d.close());
      dbPromise = null;
    },
  });
  return dbPromise;
}

/** Closes the database (tests). */
export async function closeRoutingDb(): Promise<void> {
  const d = dbPromise;
  dbPromise = null;
  (await d)?.close();
}

export type SavedRouting = { kept: number; of: number } | { kept: 0; of: number; reason: string };

/**
 * Keeps a finished run's routing (replacing the previous run's), summarised to fit `budget`.
 * Returns how many traced steps were kept, or why none were (the previous record is then dropped
 * too: it no longer belongs to the shots on the board).
 */
export async function saveRouting(
  rec: Omit<RoutingRecord, 'format' | 'savedAt' | 'tracedSteps'>,
  budget?: number,
): Promise<SavedRouting> {
  const limit = budget ?? (await routingBudget());
  const traces = summariseTraces(rec.traces, limit);
  const d = await db();
  if (!traces || !traces.length) {
    await d.delete('runs', 'last');
    const last = rec.traces[rec.traces.length - 1];
    return {
      kept: 0,
      of: rec.traces.length,
      reason: last
        ? `its last step's traces take ${mib(traceBytes(last))}, over the ${mib(limit)} kept for routing`
        : 'it has no traces',
    };
  }
  const full: RoutingRecord = {
    ...rec,
    format: ROUTING_FORMAT,
    traces,
    tracedSteps: rec.traces.length,
    savedAt: Date.now(),
  };
  await d.put('runs', full, 'last');
  return { kept: traces.length, of: rec.traces.length };
}

/** The saved routing, or null (none, or one this studio cannot read: a newer format or a broken record). */
export async function loadRouting(): Promise<RoutingRecord | null> {
  return readRoutingRecord(await (await db()).get('runs', 'last'));
}

/** Forgets the saved routing. */
export async function clearRouting(): Promise<void> {
  await (await db()).delete('runs', 'last');
}

/** A stored record checked for the fields the graph reads; null when it is not one this studio wrote. */
export function readRoutingRecord(raw: unknown): RoutingRecord | null {
  const r = raw as Partial<RoutingRecord> | undefined;
  if (!r || r.format !== ROUTING_FORMAT) return null;
  const ok =
    Array.isArray(r.takeIds) &&
    Array.isArray(r.shotIds) &&
    Array.isArray(r.captions) &&
    Array.isArray(r.traces) &&
    r.traces.length > 0 &&
    !!r.attention &&
    !!r.stats &&
    r.traces.every(
      (t) =>
        Number.isInteger(t?.step) &&
        t.chunks?.start instanceof Int32Array &&
        Array.isArray(t.layers) &&
        t.layers.every((l) => l.qMean instanceof Float32Array && l.routes?.start instanceof Uint32Array),
    );
  return ok ? (r as RoutingRecord) : null;
}

function mib(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}
