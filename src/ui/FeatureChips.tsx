import type { EngineFeatures } from '../worker/protocol.ts';

const LABELS: Record<keyof EngineFeatures, { short: string; title: string }> = {
  f16: { short: 'f16', title: 'shader-f16: half-precision kernels (f32 is used otherwise)' },
  subgroups: { short: 'subgroups', title: 'subgroups: subgroup reductions (workgroup memory is used otherwise)' },
  timestamp: { short: 'timestamps', title: 'timestamp-query: GPU timings per kernel (wall time otherwise)' },
  subgroupMatrix: {
    short: 'subgroup matrix',
    title:
      'chromium-experimental-subgroup-matrix: cooperative matrices (tensor cores on NVIDIA), not used by any kernel yet',
  },
};

/** One chip per optional WebGPU feature, lit when the engine uses it. */
export function FeatureChips({ features }: { features: EngineFeatures }) {
  return (
    <ul className="chips" aria-label="Optional GPU features">
      {(Object.keys(LABELS) as Array<keyof EngineFeatures>).map((key) => (
        <li key={key} className={features[key] ? 'chip chip-on' : 'chip'} title={LABELS[key].title}>
          {features[key] && <span aria-hidden="true">✓ </span>}
          {LABELS[key].short}
          <span className="visually-hidden">{features[key] ? ' available' : ' not available'}</span>
        </li>
      ))}
    </ul>
  );
}
