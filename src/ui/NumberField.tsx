import { useEffect, useState } from 'react';
import { parseNumberInput } from './format.ts';

interface Props {
  label: string;
  /** Shown before the input; the accessible name is `label` either way. */
  caption?: string;
  value: number;
  min: number;
  max: number;
  step?: number;
  /** Digits after the point when showing `value`. */
  digits?: number;
  suffix?: string;
  disabled?: boolean;
  className?: string;
  /** What the field does, in plain words: the tooltip of the whole field. */
  hint?: string;
  onChange(value: number): void;
}

/**
 * A number input that lets a person type freely (an empty or half-typed value is not forced
 * back while typing) and passes on only valid numbers, clamped into [min, max]. Where only whole
 * numbers make sense (an integer `step` and no `digits`), a fractional value is not passed on
 * and the field says so.
 */
export function NumberField({
  label,
  caption,
  value,
  min,
  max,
  step = 1,
  digits = 0,
  suffix,
  disabled,
  className,
  hint,
  onChange,
}: Props) {
  const shown = digits ? String(Number(value.toFixed(digits))) : String(value);
  const [text, setText] = useState(shown);
  const [editing, setEditing] = useState(false);
  const [problem, setProblem] = useState<string | null>(null);
  const integer = digits === 0 && Number.isInteger(step);
  useEffect(() => {
    if (!editing) setText(shown);
  }, [shown, editing]);

  return (
    <label className={`number-field ${className ?? ''}`} title={hint}>
      {caption && <span className="field-caption">{caption}</span>}
      <input
        type="number"
        inputMode="decimal"
        aria-label={label}
        value={text}
        min={min}
        max={max}
        step={step}
        disabled={disabled}
        onFocus={() => setEditing(true)}
        aria-invalid={problem ? true : undefined}
        onBlur={() => {
          setEditing(false);
          setText(shown);
          setProblem(null);
        }}
        onChange={(e) => {
          setText(e.target.value);
          const r = parseNumberInput(e.target.value, { min, max, integer, name: caption ?? label });
          setProblem(r && 'problem' in r ? r.problem : null);
          if (r && 'value' in r) onChange(r.value);
        }}
      />
      {suffix && <span className="field-suffix">{suffix}</span>}
      {problem && (
        <span className="field-problem warn-text" role="alert">
          {problem}
        </span>
      )}
    </label>
  );
}
