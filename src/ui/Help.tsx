import { useEffect, useState } from 'react';
import { generateAll } from '../state/actions/generate.ts';
import { isRunning } from '../state/slices/generation.ts';
import { useStudio } from '../state/store.ts';

const TOUR_KEY = 'moc-studio:tour-done';

/** The first-run tour, a step at a time: what each part of the studio is for. */
const TOUR: Array<{ title: string; text: string; href: string }> = [
  {
    title: 'Write the storyboard',
    text: 'Introduce the characters once under Cast, then give each shot a caption, a length and a seed. The model knows a small vocabulary (“Words the model knows” lists it); unknown words are marked with known ones offered.',
    href: '#storyboard-title',
  },
  {
    title: 'Generate',
    text: 'Pick a model and the number of steps; the panel estimates the run’s time on your GPU before it starts. Generate samples every shot; ↻ Regenerate on a shot samples only it, with the others kept as context.',
    href: '#generation-title',
  },
  {
    title: 'Compare, keep, export',
    text: 'Each shot keeps its versions: Keep the one you like (its seed comes back with it). Export the video as MP4 or WebM, or save the whole project as one file to open elsewhere.',
    href: '#player-title',
  },
  {
    title: 'See the memory work',
    text: 'The routing graph shows which earlier shots each chunk of frames attends to — Mixture of Contexts keeps only the most relevant ones. Teaching mode walks through that choice for one pixel with the network’s own numbers.',
    href: '#routing-title',
  },
];

function tourDone(): boolean {
  try {
    return localStorage.getItem(TOUR_KEY) === '1';
  } catch {
    return true; // no storage: do not show a tour that could never be dismissed for good
  }
}

/** A short tour in the page (never over the controls), shown on the first visit; reopened from the header. */
export function Tour({ open, onClose }: { open: boolean; onClose(): void }) {
  const [step, setStep] = useState(0);
  if (!open) return null;
  const s = TOUR[step];
  const close = (): void => {
    try {
      localStorage.setItem(TOUR_KEY, '1');
    } catch {
      // storage blocked: the tour shows again next time
    }
    setStep(0);
    onClose();
  };
  return (
    <section className="tour banner" aria-label="Tour" aria-live="polite">
      <div>
        <strong>
          {step + 1} / {TOUR.length} · {s.title}
        </strong>{' '}
        <a href={s.href}>show me</a>
        <p className="small-text">{s.text}</p>
      </div>
      <div className="tour-actions">
        <button type="button" className="small" disabled={step === 0} onClick={() => setStep(step - 1)}>
          Back
        </button>
        {step < TOUR.length - 1 ? (
          <button type="button" className="small primary" onClick={() => setStep(step + 1)}>
            Next
          </button>
        ) : (
          <button type="button" className="small primary" onClick={close}>
            Done
          </button>
        )}
        <button type="button" className="small" onClick={close} aria-label="Close the tour">
          Close
        </button>
      </div>
    </section>
  );
}

/** True on a first visit (the tour was never closed). */
export function useFirstRun(): [boolean, (open: boolean) => void] {
  const [open, setOpen] = useState(() => !tourDone());
  return [open, setOpen];
}

const SHORTCUTS: Array<[string, string]> = [
  ['?', 'Show or hide these shortcuts'],
  ['Ctrl+Enter (⌘+Enter)', 'Generate every shot'],
  ['Ctrl+Z / Ctrl+Shift+Z (or Ctrl+Y)', 'Undo / redo a storyboard edit'],
  ['Alt+↑ / Alt+↓', 'Move the focused shot up / down'],
  ['Space (in the player)', 'Play / pause'],
  ['← / → (in the player)', 'Previous / next frame'],
  ['Esc', 'Close this list'],
];

/** `?` opens the shortcut list, Esc closes it; Ctrl+Enter generates (not while typing `?` in a field). */
export function useHelpShortcuts(): [boolean, (open: boolean) => void] {
  const [open, setOpen] = useState(false);
  useEffect(() => {
    const onKey = (e: KeyboardEvent): void => {
      const typing = (e.target as HTMLElement | null)?.closest('input, textarea, select, [contenteditable]');
      if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) {
        const s = useStudio.getState();
        if (s.engine.phase === 'ready' && s.model.phase === 'ready' && !isRunning(s.run.phase)) {
          e.preventDefault();
          void generateAll();
        }
      } else if (e.key === '?' && !typing && !e.ctrlKey && !e.metaKey && !e.altKey) {
        e.preventDefault();
        setOpen((o) => !o);
      } else if (e.key === 'Escape') {
        setOpen(false);
      }
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, []);
  return [open, setOpen];
}

/** The keyboard shortcuts, over the page (Esc or the button closes it). */
export function ShortcutsOverlay({ open, onClose }: { open: boolean; onClose(): void }) {
  if (!open) return null;
  return (
    <div className="overlay" onClick={onClose}>
      <div
        className="overlay-card"
        role="dialog"
        aria-modal="true"
        aria-label="Keyboard shortcuts"
        onClick={(e) => e.stopPropagation()}
      >
        <h2>Keyboard shortcuts</h2>
        <dl className="shortcuts">
          {SHORTCUTS.map(([k, what]) => (
            <div key={k}>
              <dt>
                <kbd>{k}</kbd>
              </dt>
              <dd>{what}</dd>
            </div>
          ))}
        </dl>
        <button type="button" autoFocus onClick={onClose}>
          Close
        </button>
      </div>
    </div>
  );
}
