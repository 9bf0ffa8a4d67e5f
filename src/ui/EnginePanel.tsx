import { restartEngine } from '../state/actions/engine.ts';
import { useStudio } from '../state/store.ts';
import { FeatureChips } from './FeatureChips.tsx';
import { formatBytes } from '../model/limits.ts';
import { formatError, formatMs } from './format.ts';
import { WebGpuHelp } from './WebGpuHelp.tsx';

/** The engine check: what the device is, what it can do, and whether a kernel ran correctly. */
export function EnginePanel() {
  const engine = useStudio((s) => s.engine);
  const { phase, adapter, features, smoke, error } = engine;

  return (
    <section className="card" aria-labelledby="engine-panel-title">
      <header className="card-header">
        <h2 id="engine-panel-title">Engine check</h2>
        <p className="muted">
          A Web Worker acquires the GPU through WebGPU, adds two seeded vectors with the elementwise kernel and compares
          the result with the CPU reference.
        </p>
      </header>

      {phase === 'starting' && (
        <p className="progress">
          <span className="spinner" aria-hidden="true" /> {engine.step ?? 'Starting'}…
        </p>
      )}

      {(adapter || smoke) && (
        <dl className="facts">
          {adapter && (
            <>
              <dt>Adapter</dt>
              <dd>
                {engine.adapterName}
                {adapter.isFallback && <span className="tag">fallback</span>}
              </dd>
              {details(adapter) && (
                <>
                  <dt>Device</dt>
                  <dd>{details(adapter)}</dd>
                </>
              )}
            </>
          )}
          {features && (
            <>
              <dt>Features</dt>
              <dd>
                <FeatureChips features={features} />
              </dd>
            </>
          )}
          {adapter && (
            <>
              <dt>Limits</dt>
              <dd>
                {formatBytes(adapter.limits.maxStorageBufferBindingSize)} per binding ·{' '}
                {formatBytes(adapter.limits.maxComputeWorkgroupStorageSize)} workgroup memory ·{' '}
                {adapter.limits.maxComputeInvocationsPerWorkgroup} invocations per workgroup
              </dd>
            </>
          )}
          {smoke && (
            <>
              <dt>Smoke kernel</dt>
              <dd>
                <span className="ok">Passed</span> — {smoke.kernel} on {smoke.n} elements: max error{' '}
                {formatError(smoke.maxAbsError)} (tolerance {formatError(smoke.tolerance)}), {formatMs(smoke.coldMs)}{' '}
                with pipeline compile, {formatMs(smoke.warmMs)} warm
              </dd>
            </>
          )}
        </dl>
      )}

      {phase === 'error' && error && (
        <div className="callout-error" role="alert">
          <p>
            <strong>{error.code === 'device-lost' ? 'The GPU device was lost' : 'The engine could not start'}</strong>{' '}
            <code className="error-code">{error.code}</code>
          </p>
          <p>{error.message}</p>
          <button type="button" onClick={() => void restartEngine()}>
            Try again
          </button>
          {(error.code === 'webgpu-missing' || error.code === 'no-adapter') && <WebGpuHelp code={error.code} />}
        </div>
      )}
    </section>
  );
}

/** Vendor, architecture and device when they add something to the adapter's display name. */
function details(a: { vendor: string; architecture: string; device: string; description: string }): string | null {
  if (!a.description) return a.device ? `device ${a.device}` : null;
  return [a.vendor, a.architecture, a.device].filter(Boolean).join(' · ') || null;
}
