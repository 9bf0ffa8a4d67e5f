/** Inline SVG icons (no icon font: system fonts lack many symbols). Decorative: buttons carry the name. */
const PATHS = {
  play: 'M7 4.5v15l12-7.5z',
  pause: 'M6.5 4.5h4v15h-4zM13.5 4.5h4v15h-4z',
  prev: 'M6 5h2.5v14H6zM19 5v14L9.5 12z',
  next: 'M15.5 5H18v14h-2.5zM5 5v14l9.5-7z',
  loop: 'M7 7h9.5a3.5 3.5 0 0 1 0 7H15v-2h1.5a1.5 1.5 0 0 0 0-3H7v2.5L3.5 8 7 4.5zM17 17H7.5a3.5 3.5 0 0 1 0-7H9v2H7.5a1.5 1.5 0 0 0 0 3H17v-2.5l3.5 3.5-3.5 3.5z',
  up: 'M12 5l6.5 7h-4.5v7h-4v-7H5.5z',
  down: 'M12 19l-6.5-7h4.5V5h4v7h4.5z',
  copy: 'M8 3h10a2 2 0 0 1 2 2v10h-2V5H8zM4 8a2 2 0 0 1 2-2h8a2 2 0 0 1 2 2v11a2 2 0 0 1-2 2H6a2 2 0 0 1-2-2zm2 0v11h8V8z',
  close: 'M6.4 5L12 10.6 17.6 5 19 6.4 13.4 12 19 17.6 17.6 19 12 13.4 6.4 19 5 17.6 10.6 12 5 6.4z',
  grip: 'M8 5h3v3H8zM13 5h3v3h-3zM8 10.5h3v3H8zM13 10.5h3v3h-3zM8 16h3v3H8zM13 16h3v3h-3z',
  dice: 'M5 3h14a2 2 0 0 1 2 2v14a2 2 0 0 1-2 2H5a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2zm0 2v14h14V5zm2.5 1.5a1.5 1.5 0 1 1 0 3 1.5 1.5 0 0 1 0-3zm9 0a1.5 1.5 0 1 1 0 3 1.5 1.5 0 0 1 0-3zM12 10.5a1.5 1.5 0 1 1 0 3 1.5 1.5 0 0 1 0-3zm-4.5 4a1.5 1.5 0 1 1 0 3 1.5 1.5 0 0 1 0-3zm9 0a1.5 1.5 0 1 1 0 3 1.5 1.5 0 0 1 0-3z',
  undo: 'M9 5L3.5 10 9 15v-3.5h6a3.5 3.5 0 0 1 0 7h-3V21h3a6 6 0 0 0 0-12H9z',
  redo: 'M15 5l5.5 5-5.5 5v-3.5H9a3.5 3.5 0 0 0 0 7h3V21H9a6 6 0 0 1 0-12h6z',
  regen:
    'M12 4a8 8 0 0 1 7.4 5H17v2h6V5h-2v2.3A10 10 0 0 0 2 12h2a8 8 0 0 1 8-8zm8 8a8 8 0 0 1-15.4 3H7v-2H1v6h2v-2.3A10 10 0 0 0 22 12z',
} as const;

export type IconName = keyof typeof PATHS;

export function Icon({ name, size = 16 }: { name: IconName; size?: number }) {
  return (
    <svg className="icon" width={size} height={size} viewBox="0 0 24 24" aria-hidden="true" focusable="false">
      <path d={PATHS[name]} fill="currentColor" fillRule="evenodd" />
    </svg>
  );
}
