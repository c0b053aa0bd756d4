import { execFileSync } from 'node:child_process';
import { linkSync, lstatSync, readFileSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { describe, expect, it } from 'vitest';

import { appendToRegularFile, replaceFile, writeTempBeside } from '../../src/planted-names.js';
import { tempDir } from '../helpers/env.js';

describe('files written where others may plant names (adversary 35 F2)', () => {
  const dir = tempDir('jtm-planted-');

  it('appends only to a regular file of one link: not through a symlink, a FIFO or a hard link; never creates', () => {
    const victim = join(dir, 'victim');
    writeFileSync(victim, 'V\n');
    symlinkSync(victim, join(dir, 'link'));
    linkSync(victim, join(dir, 'hard'));
    execFileSync('mkfifo', [join(dir, 'fifo')]);
    writeFileSync(join(dir, 'plain'), 'a\n');
    // The FIFO has no reader: a blocking open would wait here for ever.
    for (const name of ['link', 'hard', 'fifo', 'missing'])
      expect(appendToRegularFile(join(dir, name), 'x\n'), name).toBe(false);
    expect(readFileSync(victim, 'utf8')).toBe('V\n');
    expect(() => lstatSync(join(dir, 'missing'))).toThrow();
    expect(appendToRegularFile(join(dir, 'plain'), 'b\n')).toBe(true);
    expect(readFileSync(join(dir, 'plain'), 'utf8')).toBe('a\nb\n');
  });

  it('replaces a symlink or a FIFO at the path by a regular file, writing through neither', () => {
    const victim = join(dir, 'victim2');
    writeFileSync(victim, 'V\n');
    symlinkSync(victim, join(dir, 'flag1'));
    execFileSync('mkfifo', [join(dir, 'flag2')]);
    for (const name of ['flag1', 'flag2', 'flag3']) {
      replaceFile(join(dir, name), '0\n');
      expect(lstatSync(join(dir, name)).isFile(), name).toBe(true);
      expect(readFileSync(join(dir, name), 'utf8')).toBe('0\n');
    }
    expect(readFileSync(victim, 'utf8')).toBe('V\n');
    // No temp file left, and each temp name is new.
    expect(readdirSync(dir).filter(f => f.includes('.jtm-'))).toEqual([]);
    const a = writeTempBeside(join(dir, 'rc'), '1\n');
    const b = writeTempBeside(join(dir, 'rc'), '1\n');
    expect(a).not.toBe(b);
    expect(a).toMatch(/\/\.rc\.jtm-[0-9a-f]{12}$/);
  });
});
