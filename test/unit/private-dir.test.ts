import { chmodSync, chownSync, mkdirSync, renameSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { InvalidInputError } from '../../src/errors.js';
import { ensurePrivateDir, ensureStillPrivate } from '../../src/private-dir.js';
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

  it("follows a symbolic link only where the directory holding it is this user's alone", () => {
    mkdirSync(join(work, 'elsewhere'));
    symlinkSync(join(work, 'elsewhere'), join(work, 'link'));
    // work is this user's, mode 0700: a link to scratch the user made.
    ensurePrivateDir(join(work, 'link'), 'the log directory');
    const shared = join(work, 'shared');
    mkdirSync(shared);
    chmodSync(shared, 0o1777);
    symlinkSync(join(work, 'elsewhere'), join(shared, 'tasks'));
    expect(() => ensurePrivateDir(join(shared, 'tasks'), 'the log directory')).toThrow(
      new InvalidInputError(
        `the log directory: ${join(shared, 'tasks')} is a symbolic link in a directory others may write: not a directory of this user's`,
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

  itIf(
    asRoot('a directory of another user is made with chown'),
    'notices a directory swapped after the check (a group project dir)',
    () => {
      // Someone who may write the log directory renames tasks/ away and puts their own in its place while the
      // worker runs: checked at its start only, the worker wrote through the new one (review).
      const dir = join(work, 'swapped');
      ensurePrivateDir(dir, 'x');
      ensureStillPrivate(dir, 'x');
      renameSync(dir, `${dir}.old`);
      mkdirSync(dir, { mode: 0o777 });
      chownSync(dir, 65534, 65534);
      expect(() => ensureStillPrivate(dir, 'the log directory')).toThrow(
        /belongs to another user \(uid 65534\)/,
      );
    },
  );
});
