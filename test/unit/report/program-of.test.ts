import { describe, expect, it } from 'vitest';

import { firstCommandWords, programOf } from '../../../src/report/program-of.js';

describe('programOf: the program a command runs, for the report groups', () => {
  it('reads quotes and backslashes as the shell does, up to the first command separator', () => {
    expect(firstCommandWords(`bash '/path with space/align.sh' "a \\"b\\"" c\\ d; rm x`)).toEqual([
      'bash',
      '/path with space/align.sh',
      'a "b"',
      'c d',
    ]);
    expect(firstCommandWords('FOO=1 BAR="a b" bwa mem | sort')).toEqual(['FOO=1', 'BAR=a b', 'bwa', 'mem']);
    expect(firstCommandWords('(cd x && make)')).toEqual(['(']);
    expect(firstCommandWords('(( i++ ))')).toEqual(['((']);
    expect(firstCommandWords("echo 'unterminated")).toEqual(['echo', 'unterminated']);
    expect(firstCommandWords('')).toEqual([]);
  });

  // Adversary 14 F1: wrapper options and quoted words were taken for the program.
  it('skips wrapper words with their options and arguments, and names the script a shell runs', () => {
    const cases: [string, string][] = [
      ['/usr/bin/time -f %e -o /tmp/t1 bwa mem', 'bwa'],
      ['/usr/bin/time -f %e_wall_%U_user -o /tmp/t2 samtools sort', 'samtools'],
      ["bash '/path with space/align.sh'", 'bash align.sh'],
      ['bash "/data/run 1/count.sh" arg', 'bash count.sh'],
      ['timeout -s KILL 10 bwa mem', 'bwa'],
      ['timeout --signal=KILL -k 5 10m bwa mem', 'bwa'],
      ['env -u HOME bwa mem', 'bwa'],
      ['env -i PATH=/bin X=1 bwa', 'bwa'],
      ['FOO=1 BAR="a b" bwa mem', 'bwa'],
      ['exec -a name bwa mem', 'bwa'],
      ['bash -x script.sh', 'bash script.sh'],
      ['/bin/bash -e /x/y/script.sh', 'bash script.sh'],
      ['bash -o pipefail -e run.sh', 'bash run.sh'],
      ["bash -ec 'samtools index x'", 'samtools'],
      ['nice -10 gzip x', 'gzip'],
      ['stdbuf -oL -e 0 python3 x.py', 'python3'],
      ['taskset -c 0-3 bwa mem', 'bwa'],
      ['nohup ./burn 5 &', 'burn'],
      ['bash', 'bash'],
      ['bash -l', 'bash'],
      ['timeout 10', ''],
      ['A=1', ''],
      // The review's: bundled shell options with a value, srun's options, `env -`, leading redirections and
      // set-up builtins, pipes and lists.
      ['bash -euo pipefail run.sh', 'bash run.sh'],
      ["bash -euo pipefail -c 'samtools view x'", 'samtools'],
      ['srun --mem 4G -o log bwa mem', 'bwa'],
      ['env - bwa', 'bwa'],
      ['>out bwa mem', 'bwa'],
      ['2> err bwa mem', 'bwa'],
      ['set -euo pipefail; bwa mem ref r.fq', 'bwa'],
      ['cd /work && samtools sort x', 'samtools'],
      ['bwa mem ref r.fq 2>&1 | samtools view -b', 'bwa'],
      ['bwa mem ref r.fq &> log', 'bwa'],
      ['set -e', 'set'],
    ];
    expect(cases.map(([c]) => programOf(c))).toEqual(cases.map(([, name]) => name));
  });

  // Adversary 21 F3: a quoted `<` or `>` is part of a word, not a redirection; an unquoted one splits a word.
  it('takes only an unquoted < or > for a redirection', () => {
    const cases: [string, string][] = [
      // A word with a `/` is a path, named by its last part as `/usr/bin/time` is `time`.
      ["'<b>bold</b>\u2028' x; exit 2", 'b>\u2028'],
      ['"</script><img src=x onerror=alert(1)>" ; exit 2', 'script><img src=x onerror=alert(1)>'],
      ["'<b>' x; exit 2", '<b>'],
      ['"a>b" c', 'a>b'],
      ['\\>x y', '>x'],
      ['2">" y', '2>'],
      ["> 'a b' bwa mem", 'bwa'],
      ['>"" bwa', 'bwa'],
      ['2>&1>log bwa', 'bwa'],
      ['bwa>out mem', 'bwa'],
      ['bwa&>log mem', 'bwa'],
      ['<in sort', 'sort'],
      ['A=1>out bwa', 'bwa'],
      [">'a\u2028' bwa", 'bwa'],
    ];
    expect(cases.map(([c]) => programOf(c))).toEqual(cases.map(([, name]) => name));
    expect(firstCommandWords('bwa>out mem 2>err')).toEqual(['bwa', '>out', 'mem', '2>err']);
  });
});
