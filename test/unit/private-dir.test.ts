import { chmodSync, chownSync, mkdirSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { InvalidInputError } from '../../src/errors.js';
import { ensurePrivateDir } from '../../src/private-dir.js';
import { tempDir } from '../helpers/env.js';
import { asRoot, itIf } from '../helpers/requirements.js';

const work = tempDir('jtm-private-dir-');
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('directories JTM writes into (tasks/, resource/, job/): no other user may put anything there', () => {
  it('makes a missing one private, and takes the write permission of others away', () => {
    ensurePrivateDir(join(work, 'new', 'tasks'), 'x');
    expect(statSync(join(work, 'new', 'tasks')).mode & 0o077).toBe(0);
    const open = join(work, 'open');
    mkdirSync(open);
    chmodSync(open, 0o777);
    ensurePrivateDir(open, 'x');
    expect(statSync(open).mode & 0o777).toBe(0o755);
  });

  it('refuses a symbolic link in its place', () => {
    mkdirSync(join(work, 'elsewhere'));
    symlinkSync(join(work, 'elsewhere'), join(work, 'link'));
    expect(() => ensurePrivateDir(join(work, 'link'), 'the log directory')).toThrow(
      new InvalidInputError(
        `the log directory: ${join(work, 'link')} is a symbolic link, not a directory of this user's`,
      ),
    );
  });

  itIf(
    asRoot('a directory of another user is made with chown'),
    "refuses another user's (adversary 12 D1)",
    () => {
      // Another user made `tasks/` first in a shared log dir, writable by all, and put symbolic links there named
      // after a coming task's output: the worker emptied the victim's ~/.bashrc and wrote a task's output over a file.
      const theirs = join(work, 'theirs');
      mkdirSync(theirs, { mode: 0o777 });
      chownSync(theirs, 65534, 65534);
      expect(() => ensurePrivateDir(theirs, 'the log directory')).toThrow(
        /belongs to another user \(uid 65534\)/,
      );
    },
  );
});
