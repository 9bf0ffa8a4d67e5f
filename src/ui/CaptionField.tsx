import { useId, useLayoutEffect, useMemo, useRef, type ReactNode } from 'react';
import { captionWords, replaceWord, splitCaption, tokenCount, unknownHints, type Vocab } from '../state/vocab.ts';

interface Props {
  label: string;
  value: string;
  onChange(text: string): void;
  /** The model's words and caption rules; null before a model is loaded (nothing is marked or counted then). */
  vocab: Vocab | null;
  /** Tokens the model reads per caption (longer captions are refused). */
  maxTokens: number | null;
  placeholder?: string;
}

/**
 * A caption textbox that marks words outside the model's vocabulary (a highlight layer behind
 * a transparent textarea) and lists them under it with the nearest known words as one-click
 * replacements.
 */
export function CaptionField({ label, value, onChange, vocab, maxTokens, placeholder }: Props) {
  const ref = useRef<HTMLTextAreaElement>(null);
  const hintId = useId();
  const hints = useMemo(() => (vocab ? unknownHints(value, vocab) : { listed: [], more: 0 }), [value, vocab]);
  const unknown = hints.listed;
  const tokens = useMemo(() => (vocab ? tokenCount(value, vocab.rules) : 0), [value, vocab]);
  const tooLong = maxTokens !== null && tokens > maxTokens;

  useLayoutEffect(() => {
    const el = ref.current;
    if (!el) return;
    el.style.height = '0px';
    el.style.height = `${el.scrollHeight}px`;
  }, [value]);

  const marks = useMemo(() => highlight(value, vocab), [value, vocab]);
  const hasHint = unknown.length > 0 || tooLong;

  return (
    <div className="caption">
      <div className="caption-field">
        <div className="caption-backdrop" aria-hidden="true">
          {marks}
          {'\u200b'}
        </div>
        <textarea
          ref={ref}
          aria-label={label}
          value={value}
          rows={1}
          spellCheck={false}
          placeholder={placeholder}
          aria-invalid={hasHint || undefined}
          aria-describedby={hasHint ? hintId : undefined}
          onChange={(e) => onChange(e.target.value)}
        />
      </div>
      {hasHint && (
        <div id={hintId} className="caption-hint">
          {tooLong && (
            <p className="warn-text">
              {tokens} tokens: the model reads at most {maxTokens} per caption.
            </p>
          )}
          {unknown.length > 0 && (
            <p>
              <span className="warn-text">Not in the model’s vocabulary:</span>{' '}
              {unknown.map(({ word: w, options }) => {
                return (
                  <span key={w.word} className="unknown-word">
                    <mark>{w.word}</mark>
                    {options.length > 0 && ' → '}
                    {options.map((o) => (
                      <button
                        key={o}
                        type="button"
                        className="link-button"
                        aria-label={`Replace “${w.word}” with “${o}”`}
                        onClick={() => onChange(replaceAll(value, w.word, o, vocab!.rules))}
                      >
                        {o}
                      </button>
                    ))}
                  </span>
                );
              })}
              {hints.more > 0 && <span className="unknown-more"> and {hints.more} more</span>}
            </p>
          )}
        </div>
      )}
    </div>
  );
}

/** The caption as text with unknown words wrapped in <mark>. */
function highlight(text: string, vocab: Vocab | null): ReactNode[] {
  if (!vocab) return [text];
  const out: ReactNode[] = [];
  let at = 0;
  for (const w of splitCaption(text, vocab.rules)) {
    if (vocab.words.has(w.word)) continue;
    out.push(text.slice(at, w.start), <mark key={w.start}>{text.slice(w.start, w.end)}</mark>);
    at = w.end;
  }
  out.push(text.slice(at));
  return out;
}

/** Every occurrence of the unknown `word` replaced by `by`. */
function replaceAll(text: string, word: string, by: string, rules: Vocab['rules']): string {
  let out = text;
  for (const w of splitCaption(text, rules).reverse()) if (w.word === word) out = replaceWord(out, w, by);
  return out;
}

/** The words the loaded model knows, in a disclosure: captions are written with these only. */
export function VocabList({ vocab }: { vocab: Vocab | null }) {
  if (!vocab) return null;
  const words = captionWords(vocab.words);
  return (
    <details className="vocab-list small-text">
      <summary>Words the model knows ({words.length})</summary>
      <p className="muted">
        Captions use these words only; others are marked, with known words of the same meaning or spelling offered.
      </p>
      <ul aria-label="Model vocabulary">
        {words.map((w) => (
          <li key={w}>
            <code>{w}</code>
          </li>
        ))}
      </ul>
    </details>
  );
}
