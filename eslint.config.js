// ESLint flat config: typescript-eslint's recommended rules, plus the layer rules of
// ../shared/design/ARCHITECTURE.md (imports point one way: engine ← model ← worker; state ← ui, viz).
// Each layer rule says in its message what is forbidden and where the code should go instead.
import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

/** The start of an import that leaves the current layer: `../` (any depth) or a src/-rooted path. */
const UP = '^(?:(?:\\.\\./)+|(?:.*/)?src/)';

/** Matches an import of one of the layers `dirs` (directories under src/). */
const layer = (...dirs) => `${UP}(?:${dirs.join('|')})(?:/|$)`;

/** Matches a package and its subpaths, e.g. react and react/jsx-runtime. */
const pkg = (...names) => `^(?:${names.join('|')})(?:/|$)`;

/** One `@typescript-eslint/no-restricted-imports` block for the files of a layer. */
function restrict(files, patterns) {
  return { files, rules: { '@typescript-eslint/no-restricted-imports': ['error', { patterns }] } };
}

/**
 * Model modules that are pure functions and data (no engine, no GPU, nothing heavy): the page may
 * import them on the main thread (parsing imports, the schema's limits, formatting sizes, what a
 * shot length means for a model). Every other model module runs in the worker.
 */
const PURE_MODEL = ['api', 'config', 'errors', 'limits', 'routing-json', 'storyboard', 'zod'];

/** The engine, model (except PURE_MODEL) and CLI layers, which the browser layers reach by type only. */
const BELOW_WORKER = `${UP}(?:engine|cli|model(?!/(?:${PURE_MODEL.join('|')})(?:\\.ts)?$))(?:/|$)`;

/** Outside src/worker, only client.ts (values) and protocol.ts (types) may be imported. */
const WORKER_BOUNDARY = [
  {
    regex: `${UP}worker/(?!(?:client|protocol)(?:\\.ts)?$)`,
    message:
      'Reach the engine worker only through src/worker/client.ts (and `import type` from protocol.ts); the rest of src/worker runs inside the worker.',
  },
  {
    regex: `${UP}worker/protocol(?:\\.ts)?$`,
    allowTypeImports: true,
    message: 'protocol.ts is the types-only worker contract: use `import type { … }` from it.',
  },
];

export default tseslint.config(
  {
    ignores: [
      'dist/',
      'node_modules/',
      'test-results/',
      'playwright-report/',
      'e2e-artifacts/',
      'public/',
      'train/',
      '.gpu/',
      '.build/',
      '.vite/',
      'coverage/',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { ecmaVersion: 2023, sourceType: 'module' },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' },
      ],
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
    },
  },
  // Hosts: browser code, the worker, Node code.
  { files: ['src/**/*.{ts,tsx}'], languageOptions: { globals: { ...globals.browser } } },
  { files: ['src/worker/**/*.ts'], languageOptions: { globals: { ...globals.worker } } },
  {
    files: ['src/cli/**', 'src/engine/host-node.ts', 'tests/**', 'e2e/**', 'bin/**', 'scripts/**', '*.config.{js,ts}'],
    languageOptions: { globals: { ...globals.node } },
  },

  // ── layer rules ────────────────────────────────────────────────────────────────────────────
  restrict(
    ['src/engine/**'],
    [
      {
        regex: layer('model', 'worker', 'state', 'ui', 'viz', 'cli'),
        message:
          'src/engine is the bottom layer (WebGPU only) and knows nothing of the model, worker, state, UI or CLI. Move the shared code down into src/engine or invert the dependency.',
      },
      {
        regex: pkg('react', 'react-dom', 'three', 'comlink', 'zustand'),
        message: 'src/engine runs in workers and Node: no React, three.js, comlink or zustand here.',
      },
    ],
  ),
  restrict(
    ['src/model/**'],
    [
      {
        regex: layer('worker', 'state', 'ui', 'viz', 'cli'),
        message: 'src/model sits on the engine only; the worker, state, UI and CLI call into it, never the reverse.',
      },
      {
        regex: pkg('react', 'react-dom', 'zustand', 'comlink'),
        message: 'src/model is host-independent model code: no React, zustand or comlink (the worker wraps it).',
      },
    ],
  ),
  restrict(
    ['src/worker/**'],
    [
      {
        regex: layer('state', 'ui', 'viz', 'cli'),
        message: 'src/worker serves the UI through protocol.ts; it must not import the state, UI, viz or CLI layers.',
      },
      {
        regex: pkg('react', 'react-dom', 'three', 'zustand'),
        message: 'src/worker has no UI: no React, three.js or zustand.',
      },
    ],
  ),
  restrict(
    ['src/state/**'],
    [
      ...WORKER_BOUNDARY,
      {
        regex: layer('ui', 'viz'),
        message: 'src/state is below the UI and viz: they subscribe to the store, the store never imports them.',
      },
      {
        regex: BELOW_WORKER,
        allowTypeImports: true,
        message:
          'The store holds plain data only: reach the engine and model through src/worker/client.ts (type imports are fine; PURE_MODEL modules may be imported).',
      },
      {
        regex: pkg('three', 'comlink'),
        message: 'src/state holds plain data: three.js belongs in src/viz, comlink in src/worker/client.ts.',
      },
    ],
  ),
  restrict(
    ['src/ui/**'],
    [
      ...WORKER_BOUNDARY,
      {
        regex: BELOW_WORKER,
        allowTypeImports: true,
        message:
          'UI components never touch the engine or model: call an action in src/state, which goes through src/worker/client.ts (type imports are fine; PURE_MODEL modules may be imported).',
      },
      { regex: pkg('comlink'), message: 'Only src/worker/client.ts talks comlink; the UI calls state actions.' },
    ],
  ),
  restrict(
    ['src/viz/**'],
    [
      {
        regex: pkg('react', 'react-dom'),
        message:
          'src/viz is an imperative three.js scene (update / resize / dispose) fed by store.subscribe; React lives in src/ui.',
      },
      { regex: layer('ui'), message: 'src/viz must not import the UI; the UI mounts the scene.' },
      ...WORKER_BOUNDARY,
      {
        regex: layer('engine', 'model', 'cli'),
        allowTypeImports: true,
        message: 'src/viz draws state, it does not run the engine or model (type imports are fine).',
      },
    ],
  ),
  restrict(
    ['src/cli/**'],
    [
      {
        regex: layer('ui', 'state', 'viz'),
        message: 'src/cli is a Node entry over the model and engine; it must not import the browser layers.',
      },
      {
        regex: pkg('react', 'react-dom', 'three', 'zustand'),
        message: 'src/cli runs in Node: no React, three.js or zustand.',
      },
    ],
  ),
);
