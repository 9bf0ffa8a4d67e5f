import { useEffect, useRef, type MouseEvent } from 'react';
import { frameOf, type Clip } from '../state/media.ts';

interface Props {
  clip: Clip | null | undefined;
  frame: number;
  /** CSS size of the longer side in pixels (the canvas keeps the clip's own pixels). */
  size: number;
  label: string;
  /** Bumped whenever the pixels behind `clip` may have changed. */
  version?: number;
  className?: string;
  onClick?(e: MouseEvent<HTMLCanvasElement>, clip: Clip): void;
  /** Drawn when there is no clip. */
  placeholder?: string;
}

/** One frame of a clip, scaled up with crisp pixels; a labelled placeholder when there is none. */
export function FrameCanvas({ clip, frame, size, label, version, className, onClick, placeholder }: Props) {
  const ref = useRef<HTMLCanvasElement>(null);
  useEffect(() => {
    const canvas = ref.current;
    if (!canvas || !clip) return;
    if (canvas.width !== clip.width || canvas.height !== clip.height) {
      canvas.width = clip.width;
      canvas.height = clip.height;
    }
    canvas.getContext('2d')?.putImageData(new ImageData(frameOf(clip, frame), clip.width, clip.height), 0, 0);
  }, [clip, frame, version]);

  if (!clip) {
    return (
      <div
        className={`frame-empty ${className ?? ''}`}
        style={{ width: size, height: size }}
        role="img"
        aria-label={label}
      >
        {placeholder && <span>{placeholder}</span>}
      </div>
    );
  }
  const w = clip.width >= clip.height ? size : (size * clip.width) / clip.height;
  const h = clip.height >= clip.width ? size : (size * clip.height) / clip.width;
  return (
    <canvas
      ref={ref}
      className={`frame ${className ?? ''}`}
      style={{ width: w, height: h }}
      role="img"
      aria-label={label}
      onClick={onClick ? (e) => onClick(e, clip) : undefined}
    />
  );
}
