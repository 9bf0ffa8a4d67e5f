import { useEffect } from 'react';
import { dismissResume, resumeGeneration } from '../state/actions/generate.ts';
import { isRunning } from '../state/slices/generation.ts';
import { useStudio } from '../state/store.ts';
import { EnginePanel } from './EnginePanel.tsx';
import { GenerationPanel, QuickGenerate } from './GenerationPanel.tsx';
import { ShortcutsOverlay, Tour, useFirstRun, useHelpShortcuts } from './Help.tsx';
import { PanelGuard } from './PanelGuard.tsx';
import { Player } from './Player.tsx';
import { RoutingGraph } from './RoutingGraph.tsx';
import { StatusBar } from './StatusBar.tsx';
import { StoryboardEditor } from './StoryboardEditor.tsx';
import { TakesPanel } from './TakesPanel.tsx';
import { TeachPanel } from './TeachPanel.tsx';

/** The panels below the player, each in its own error boundary. */
const LOWER_PANELS = [
  ['The takes panel', TakesPanel],
  ['The routing graph', RoutingGraph],
  ['The teach panel', TeachPanel],
  ['The engine panel', EnginePanel],
] as const;

/** The studio shell: header, storyboard | player and routing | generation, status bar. */
export function App() {
  useUndoShortcuts();
  const [tour, setTour] = useFirstRun();
  const [keys, setKeys] = useHelpShortcuts();
  return (
    <div className="app">
      <header className="app-header">
        <img className="logo" src={`${import.meta.env.BASE_URL}favicon.svg`} alt="" width={28} height={28} />
        <h1>MoC Studio</h1>
        <p className="tagline">Multi-shot video generation with Mixture-of-Contexts attention, on your GPU</p>
        <nav className="header-help" aria-label="Help">
          <button type="button" className="small" onClick={() => setTour(true)} title="A short tour of the studio">
            Tour
          </button>
          <button
            type="button"
            className="small"
            onClick={() => setKeys(true)}
            aria-label="Keyboard shortcuts"
            title="Keyboard shortcuts (?)"
          >
            ?
          </button>
        </nav>
      </header>
      <ShortcutsOverlay open={keys} onClose={() => setKeys(false)} />
      <main className="workspace">
        <DeviceLostBanner />
        <Tour open={tour} onClose={() => setTour(false)} />
        <QuickGenerate />
        <div className="studio">
          <div className="col-board">
            <PanelGuard name="The storyboard editor">
              <StoryboardEditor />
            </PanelGuard>
          </div>
          <div className="col-main">
            <div className="main-top">
              <PanelGuard name="The player">
                <Player />
              </PanelGuard>
              <div className="col-side">
                <PanelGuard name="The generation panel">
                  <GenerationPanel />
                </PanelGuard>
              </div>
            </div>
            {LOWER_PANELS.map(([name, Panel]) => (
              <PanelGuard key={name} name={name}>
                <Panel />
              </PanelGuard>
            ))}
          </div>
        </div>
      </main>
      <StatusBar />
    </div>
  );
}

/** Ctrl+Z / Ctrl+Shift+Z / Ctrl+Y (⌘ on macOS) undo and redo storyboard edits anywhere on the page. */
function useUndoShortcuts(): void {
  useEffect(() => {
    const onKey = (e: KeyboardEvent): void => {
      if (!(e.ctrlKey || e.metaKey) || e.altKey) return;
      const key = e.key.toLowerCase();
      const target = e.target as HTMLElement | null;
      // The append-shot caption is not part of the storyboard: let the browser undo its typing.
      if (target?.closest('.append-shot')) return;
      if (key === 'z' && !e.shiftKey) {
        e.preventDefault();
        useStudio.getState().undo();
      } else if ((key === 'z' && e.shiftKey) || key === 'y') {
        e.preventDefault();
        useStudio.getState().redo();
      }
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, []);
}

/**
 * Says that the GPU device was lost or the engine worker crashed, and is being (or has been)
 * recovered; offers to resume the run it interrupted. After a reload, offers to resume a run that
 * did not finish before the page went away (or was interrupted before it did).
 */
function DeviceLostBanner() {
  const engine = useStudio((s) => s.engine);
  const interrupted = useStudio((s) => s.interrupted !== null);
  const code = engine.error?.code;
  const lost =
    code === 'device-lost' ||
    (code === 'worker-failed' && engine.error!.message.startsWith('The engine worker stopped'));
  if (!lost && engine.recoveries === 0 && engine.crashes === 0) {
    if (!interrupted) return null;
    return (
      <div className="banner banner-warn" role="status">
        <span>
          A run did not finish before the studio was last closed or reloaded; your storyboard and finished shots are
          kept.
        </span>
        <ResumeOffer />
      </div>
    );
  }
  const times = (n: number): string => (n === 1 ? 'once' : `${n} times`);
  const what = [
    engine.recoveries ? `the GPU device was lost ${times(engine.recoveries)}` : '',
    engine.crashes ? `the engine worker stopped ${times(engine.crashes)}` : '',
  ]
    .filter(Boolean)
    .join(' and ');
  return (
    <div className={`banner ${lost ? 'banner-warn' : 'banner-ok'}`} role={lost ? 'alert' : 'status'}>
      <span>
        {lost
          ? engine.error!.message
          : `${what.charAt(0).toUpperCase()}${what.slice(1)} and the engine recovered${engine.phase === 'ready' ? '' : ' (restarting…)'}; your storyboard and finished shots were kept.`}
      </span>
      <ResumeOffer />
    </div>
  );
}

/** The interrupted run, with Resume (once the engine and the model are back) and Dismiss. */
function ResumeOffer() {
  const interrupted = useStudio((s) => s.interrupted);
  const ready = useStudio((s) => s.engine.phase === 'ready' && s.model.phase === 'ready' && !isRunning(s.run.phase));
  if (!interrupted) return null;
  const { kind, shots, step, steps } = interrupted;
  const what =
    kind === 'append'
      ? 'appending a shot'
      : `${kind === 'regenerate' ? 'regenerating' : 'generating'} ${shots} shot${shots > 1 ? 's' : ''}`;
  return (
    <span className="resume-offer">
      The interrupted run ({what}, stopped at step {step} of {steps}) can be run again with the same shots, seeds and
      settings.
      <button
        type="button"
        className="primary"
        disabled={!ready}
        title={ready ? undefined : 'Waits for the engine and the model'}
        onClick={() => void resumeGeneration()}
      >
        Resume generation
      </button>
      <button type="button" onClick={dismissResume}>
        Dismiss
      </button>
    </span>
  );
}
