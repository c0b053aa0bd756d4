// Values of string flags written with `=` that start with '-' (oclif would take them for flags) are swapped for
// placeholders before oclif parses, and put back after (src/cli/dash-values.ts).
import { Flags } from '@oclif/core';
import { describe, expect, it } from 'vitest';

import { shieldDashValues } from '../../../src/cli/dash-values.js';

const flags = {
  command: Flags.string(),
  'sbatch-arg': Flags.string({ multiple: true }),
  slots: Flags.integer(),
};

describe('values that start with a dash', () => {
  it('are put back after parsing, in a flag given once and in one given many times', () => {
    const { argv, restore } = shieldDashValues(
      ['--command=-p x', '--sbatch-arg=--comment=x', '--sbatch-arg=--exclusive', '--slots=-1'],
      flags,
    );
    expect(argv[0]).not.toBe('--command=-p x');
    expect(argv[3]).toBe('--slots=-1'); // an integer keeps oclif's own check
    const value = (token: string): string => token.slice(token.indexOf('=') + 1);
    // What oclif returns: the placeholders, an array for the repeated flag (before the fix, the array's were
    // left as they were and reached the user as "\u0000jtm-value-0").
    const parsed: Record<string, unknown> = {
      command: value(argv[0]!),
      'sbatch-arg': [value(argv[1]!), value(argv[2]!)],
      slots: -1,
    };
    restore(parsed);
    expect(parsed).toEqual({
      command: '-p x',
      'sbatch-arg': ['--comment=x', '--exclusive'],
      slots: -1,
    });
  });
});
