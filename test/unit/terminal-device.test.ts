import { existsSync, statSync } from 'node:fs';

import { describe, expect, it } from 'vitest';

import { InvalidInputError } from '../../src/errors.js';
import { buildTask } from '../../src/tasks/task-spec.js';
import { deviceNumbers, isTerminalDevice, isTerminalPath } from '../../src/terminal-device.js';

describe('terminal devices', () => {
  it('splits a device number as Linux encodes it (glibc makedev)', () => {
    expect(deviceNumbers(0x0501)).toEqual({ major: 5, minor: 1 });
    expect(deviceNumbers(0x8800)).toEqual({ major: 136, minor: 0 });
    // makedev(259, 70000): major bits above 8 and minor bits above 8 in their high places.
    const major = 259;
    const minor = 70_000;
    const dev =
      (minor & 0xff) + ((major & 0xfff) << 8) + (minor & ~0xff) * 2 ** 12 + (major & ~0xfff) * 2 ** 32;
    expect(deviceNumbers(dev)).toEqual({ major, minor });
  });

  it('tells terminals from other character devices by what they are, not by name', () => {
    for (const p of ['/dev/console', '/dev/tty', '/dev/ptmx']) {
      if (existsSync(p)) expect([p, isTerminalPath(p)]).toEqual([p, true]);
    }
    for (const p of ['/dev/null', '/dev/zero', '/dev/full', '/dev/urandom', '/tmp', '/no/such/file']) {
      expect([p, isTerminalPath(p)]).toEqual([p, false]);
    }
    // A Unix98 pty slave (no sysfs entry) by its major.
    expect(isTerminalDevice(136 << 8)).toBe(true);
    expect(isTerminalDevice(statSync('/dev/null').rdev)).toBe(false);
  });

  it.runIf(existsSync('/dev/console'))(
    'submit refuses /dev/console as a task output, as /dev/tty (adversary 28 F8: taken, the output went to the console)',
    () => {
      const defaults = { cwd: '/work', maxCommandBytes: 100, pool: 'p' };
      for (const field of ['stdout', 'stderr', 'rc_file'] as const) {
        expect(() => buildTask({ command: 'ls', [field]: '/dev/console' }, defaults)).toThrow(
          new InvalidInputError(
            `${field} "/dev/console" is a terminal, where the output would be lost: give a file`,
          ),
        );
        // Odd spellings of the same path, a trailing slash too (adversary 30 F6: `/dev/console/` was taken).
        for (const odd of ['/dev/./console', '/dev//console', '/dev/console/', '/dev/console//'])
          expect(() => buildTask({ command: 'ls', [field]: odd }, defaults)).toThrow(/is a terminal/);
      }
      // Other devices are taken as before (/dev/null: the output discarded, as asked).
      expect(buildTask({ command: 'ls', stdout: '/dev/null' }, defaults).stdout).toBe('/dev/null');
    },
  );
});
