import { describe, expect, it } from 'vitest';

import { expandVars } from '../../../src/worker/output-files.js';

describe('output files', () => {
  it('expands $VAR and ${VAR} in output file names', () => {
    expect(expandVars('$HOME/a,${X}/b,$NOPE/c', { HOME: '/h', X: 'x' })).toBe('/h/a,x/b,/c');
  });
});
