import { defineConfig } from 'vitest/config';

// One worker, files run one after another in it: Dawn (lavapipe) already uses both cores, a second Dawn process
// finds none spare, and the GPU device is created once per process.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    maxWorkers: 1,
    fileParallelism: false,
    isolate: false,
    testTimeout: 120_000,
    hookTimeout: 120_000,
    setupFiles: ['test/helpers/setup.ts'],
    reporters: ['default', './test/helpers/summary-reporter.ts'],
  },
});
