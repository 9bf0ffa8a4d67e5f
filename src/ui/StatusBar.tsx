import { useState } from 'react';
import { useStudio } from '../state/store.ts';
import type { EnginePhase } from '../state/store.ts';
import { FeatureChips } from './FeatureChips.tsx';
import { formatError, formatMs } from './format.ts';

const PHASE_TEXT: Record<EnginePhase, string> = {
  idle: 'Engine idle',
  starting: 'Engine starting',
  ready: 'Engine ready',
  error: 'Engine error',
};

/**
 * The bar along the bottom of the studio: engine phase, adapter, optional features and the
 * smoke check. It is a live status region named "Engine status".
 */
export function StatusBar() {
  const engine = useStudio((s) => s.engine);
  const { phase, smoke, error } = engine;
  // collapsed to the phase line on narrow screens until asked for
  const [open, setOpen] = useState(
    () => typeof matchMedia === 'undefined' || !matchMedia('(max-width: 720px)').matches,
  );

  return (
    <footer
      className={`status-bar${open ? '' : ' collapsed'}`}
      role="status"
      aria-label="Engine status"
      aria-live="polite"
      data-phase={phase}
    >
      <span className={`status-phase phase-${phase}`}>
        <span className="status-dot" aria-hidden="true" />
        {PHASE_TEXT[phase]}
        <button
          type="button"
          className="link-button status-toggle"
          aria-expanded={open}
          onClick={() => setOpen(!open)}
          title={
            open
              ? 'Hide the adapter, feature and smoke-check details'
              : 'Show the adapter, feature and smoke-check details'
          }
        >
          {open ? 'Less' : 'Details'}
        </button>
      </span>

      {phase === 'starting' && engine.step && <span className="status-item muted">{engine.step}…</span>}

      {engine.adapterName && (
        <span className="status-item" title={engine.adapter ? adapterTitle(engine.adapter) : undefined}>
          <span className="status-key">Adapter</span> {engine.adapterName}
          {engine.adapter?.isFallback && <span className="tag">fallback</span>}
        </span>
      )}

      {engine.features && (
        <span className="status-item">
          <FeatureChips features={engine.features} />
        </span>
      )}

      {smoke && (
        <span className="status-item status-smoke">
          <span className="status-key">Smoke</span> {smoke.kernel} ×{smoke.n}{' '}
          <span className="ok" aria-hidden="true">
            ✓
          </span>{' '}
          max error {formatError(smoke.maxAbsError)} · {formatMs(smoke.coldMs)} cold · {formatMs(smoke.warmMs)} warm
        </span>
      )}

      {phase === 'error' && error && (
        <span className="status-item status-error" title={error.message}>
          <code className="error-code">{error.code}</code> {error.message}
        </span>
      )}
    </footer>
  );
}

function adapterTitle(a: { vendor: string; architecture: string; device: string; description: string }): string {
  return [
    `vendor: ${a.vendor || '?'}`,
    `architecture: ${a.architecture || '?'}`,
    `device: ${a.device || '?'}`,
    `description: ${a.description || '?'}`,
  ].join('\n');
}
