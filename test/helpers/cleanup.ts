import { afterAll } from 'vitest';

import { removeTempDirs } from './env.js';

// A setup file: its afterAll is registered first, so it runs after the test file's own (vitest runs
// after-hooks as a stack), once the file's workers and servers are stopped and no longer write there.
afterAll(() => removeTempDirs());
