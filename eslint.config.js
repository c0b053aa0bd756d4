import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/** The domain folders of src (see README's layout): infrastructure must import none of them. */
const DOMAIN = [
  'cli',
  'tasks',
  'worker',
  'manager',
  'pools',
  'slurm',
  'dashboard',
  'report',
  'metrics',
  'control',
  'http',
];

/**
 * What every file of src may not import, whatever its layer: commands, oclif (src/cli aside) and node-pty
 * (src/worker/pty-host.ts aside). The infrastructure block adds its own pattern to these, since ESLint replaces
 * a rule's options per block rather than merging them.
 */
const SRC_PATTERNS = [
  { group: ['**/commands/**'], message: 'src must not import commands' },
  { group: ['@oclif/*'], message: 'only src/cli and commands use oclif' },
];
const SRC_PATHS = [{ name: 'node-pty', message: 'only src/worker/pty-host.ts imports node-pty' }];

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'test-output/**', 'coverage/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      globals: {
        process: 'readonly',
        console: 'readonly',
        Buffer: 'readonly',
        setTimeout: 'readonly',
        clearTimeout: 'readonly',
        URL: 'readonly',
      },
    },
    rules: {
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  {
    // Layering: commands → src/cli → domain → infrastructure. Only the pty module touches node-pty,
    // only src/cli and commands touch oclif, and nothing in src imports commands.
    files: ['src/**/*.ts'],
    ignores: ['src/cli/**'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            ...SRC_PATTERNS,
            { group: ['**/cli/*'], message: 'domain code must not import the CLI layer' },
          ],
          paths: SRC_PATHS,
        },
      ],
    },
  },
  { files: ['src/worker/pty-host.ts'], rules: { 'no-restricted-imports': 'off' } },
  {
    // Infrastructure imports no domain folder (nor the context, which carries the task store): the layers
    // below stay usable and testable alone, and no cycle can pass through them. This block replaces the
    // options above for these files, so it starts from the same shared lists.
    files: [
      'src/redis/**/*.ts',
      'src/store/**/*.ts',
      'src/config.ts',
      'src/fields.ts',
      'src/pool-spec.ts',
      'src/logger.ts',
      'src/errors.ts',
      'src/task-status.ts',
      'src/durations.ts',
      'src/input-file.ts',
      'src/shutdown.ts',
    ],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            ...SRC_PATTERNS,
            {
              group: [...DOMAIN.flatMap(d => [`./${d}/*`, `../${d}/*`]), './context.js', '../context.js'],
              message: 'infrastructure (src/redis, config, logger, errors, ...) must not import domain code',
            },
          ],
          paths: SRC_PATHS,
        },
      ],
    },
  },
  {
    files: ['scripts/**/*.mjs', 'bin/**/*.js'],
    languageOptions: {
      globals: {
        process: 'readonly',
        console: 'readonly',
        setTimeout: 'readonly',
        setInterval: 'readonly',
        clearInterval: 'readonly',
        clearTimeout: 'readonly',
        URL: 'readonly',
      },
    },
  },
);
