/**
 * routing.json: what `moc generate` writes beside the frames and what the studio's "Export
 * routing" downloads — the same format from either. The chunk table and, per traced step and
 * layer, the routed edges summed over heads as [from, to, count] (stream chunk ids, sorted by
 * from, then to) and the sparsity.
 */
import type { AttentionOptions, GenerateResult } from './api.ts';

/** What routing.json is made from: a run's traces and totals (a GenerateResult has them all). */
export type RoutingRun = Pick<GenerateResult, 'traces' | 'sparsity' | 'attentionFlops'>;

export function routingSummary(r: RoutingRun, attention: AttentionOptions, heads: number): unknown {
  const chunks = r.traces[0]?.chunks;
  const C = chunks?.start.length ?? 0;
  const row = new Float64Array(C);
  return {
    mode: attention.mode,
    topK: attention.topK,
    chunkFrames: attention.chunkFrames,
    causal: attention.causal,
    heads,
    sparsity: r.sparsity,
    attentionFlops: r.attentionFlops,
    chunks: chunks?.chunks.map((c) => ({ start: c.start, end: c.end, kind: c.kind, shot: c.shot })) ?? [],
    steps: r.traces.map((t) => ({
      step: t.step,
      layers: t.layers.map((l) => {
        const edges: [number, number, number][] = [];
        const { start, to, count } = l.routes; // rows h·C + a (RouteRows)
        for (let a = 0; a < C; a++) {
          row.fill(0);
          for (let h = 0; h < l.H; h++)
            for (let e = start[h * C + a]; e < start[h * C + a + 1]; e++) row[to[e]] += count[e];
          for (let b = 0; b < C; b++) if (row[b] > 0) edges.push([a, b, row[b]]);
        }
        const sparsity = Array.from(l.sparsity);
        return { sparsity: sparsity.reduce((x, y) => x + y, 0) / sparsity.length, sparsityPerHead: sparsity, edges };
      }),
    })),
  };
}
