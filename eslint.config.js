// @ts-check
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['gen/**', 'node_modules/**', '.keybrake/**', 'coverage/**', 'bin/**'] },
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  {
    // The data plane is deployed alone, near the pipelines: it may use core/ and gen/,
    // never the control plane's code (and so never its secrets handling or stores).
    files: ['data-plane/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [{ group: ['**/control-plane/**', '../control-plane/*'], message: 'data-plane/ must not import control-plane/' }] }],
    },
  },
  {
    files: ['core/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [{ group: ['**/control-plane/**', '**/data-plane/**'], message: 'core/ is shared pure code: it imports neither plane' }] }],
    },
  },
);
