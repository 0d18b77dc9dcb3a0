// @ts-check
import js from '@eslint/js';
import importX, { createNodeResolver } from 'eslint-plugin-import-x';
import tseslint from 'typescript-eslint';

/**
 * The dependency rule (docs/architecture.md): kernel ← input ← capabilities ← edges, with infra
 * beside the capabilities. A capability imports only kernel, input and infra, never another
 * capability; only the composition root (src/app) builds stores; only store adapters talk to
 * Redis. Each zone: files in `target` may not import files in `from`.
 */
const CAPABILITIES = ['payments', 'subscriptions', 'batches', 'notifications'];
const EDGES = [
  'src/app',
  'src/http',
  'src/console',
  'src/cli',
  'src/demo',
  'src/sandbox',
  'src/main.ts',
];
const zones = [
  {
    target: 'src/kernel',
    from: [
      ...CAPABILITIES.map((c) => `src/${c}`),
      'src/input',
      'src/infra',
      'src/config',
      ...EDGES,
    ],
    message: 'kernel/ is pure: it imports only luxon, zod and itself.',
  },
  {
    target: 'src/input',
    from: [...CAPABILITIES.map((c) => `src/${c}`), 'src/infra', 'src/config', ...EDGES],
    message: 'input/ imports only kernel/.',
  },
  {
    target: 'src/infra',
    from: [...CAPABILITIES.map((c) => `src/${c}`), 'src/input', ...EDGES],
    message: 'infra/ serves the capabilities: it never imports one, nor an edge.',
  },
  {
    target: 'src/config',
    from: [...CAPABILITIES.map((c) => `src/${c}`), 'src/input', 'src/infra', ...EDGES],
    message: 'config/ imports only kernel/.',
  },
  ...CAPABILITIES.map((c) => ({
    target: `src/${c}`,
    from: [...CAPABILITIES.filter((o) => o !== c).map((o) => `src/${o}`), 'src/config', ...EDGES],
    message: `a capability never imports another (go through a port in kernel/), nor config/ or an edge.`,
  })),
  ...CAPABILITIES.map((c) => ({
    target: [`src/${c}/*.ts`],
    from: [`src/${c}/store`],
    message:
      "features use the port (kernel/ports.ts or the capability's ports.ts); only the composition root builds the store.",
  })),
  {
    target: 'src/sandbox',
    from: [
      ...CAPABILITIES.map((c) => `src/${c}`),
      'src/input',
      'src/app',
      'src/http',
      'src/console',
      'src/cli',
      'src/demo',
    ],
    message: 'the sandbox simulates Sayswitch: it shares only kernel/ and infra/ with the product.',
  },
];

export default tseslint.config(
  {
    ignores: [
      'dist/**',
      'node_modules/**',
      'coverage/**',
      'bin/**',
      'bench/out/**',
      'eslint.config.js',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { project: './tsconfig.check.json', tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': [
        'error',
        { checksVoidReturn: { arguments: false } },
      ],
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_' },
      ],
      '@typescript-eslint/consistent-type-imports': 'error',
      'no-restricted-properties': [
        'error',
        {
          object: 'process',
          property: 'env',
          message: 'Only src/config and src/main.ts read process.env.',
        },
      ],
    },
  },
  {
    files: ['src/**/*.ts'],
    plugins: { 'import-x': importX },
    settings: { 'import-x/resolver-next': [createNodeResolver()] },
    rules: { 'import-x/no-restricted-paths': ['error', { zones }] },
  },
  {
    // Features never take a raw Redis connection: only store adapters, infra and the root do.
    files: [...CAPABILITIES.map((c) => `src/${c}/*.ts`), 'src/input/**', 'src/kernel/**'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: [
            {
              name: 'ioredis',
              message:
                'features depend on ports; Redis is used by store adapters (<capability>/store/) and infra/ only.',
            },
          ],
        },
      ],
    },
  },
  {
    files: ['src/config/**', 'src/main.ts', 'test/**', 'bench/**', 'vitest.config.ts'],
    rules: { 'no-restricted-properties': 'off' },
  },
  {
    files: ['test/**', 'bench/**'],
    rules: {
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-non-null-assertion': 'off',
    },
  },
);
