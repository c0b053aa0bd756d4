import { describe, expect, it } from 'vitest';

import { MAX_COMMAND_BYTES } from '../../../src/config.js';
import { simpleCommandWords, taskArgv, taskScript } from '../../../src/worker/task-argv.js';

const WRAPPER = '/opt/jtm/jtm-task-exec';
const env = { PATH: '/usr/bin:/bin', JTM_CGROUP_PROCS: '/sys/fs/cgroup/x/cgroup.procs' };

describe('which commands skip the bash preamble (the static wrapper execs their words)', () => {
  it.each([
    ['/bin/true', ['/bin/true']],
    [
      '/bin/bash /cromwell-executions/wf/call-a/execution/script',
      ['/bin/bash', '/cromwell-executions/wf/call-a/execution/script'],
    ],
    [
      '  ./run.sh  --in=a.txt,b.txt -k 5 user@host:1%  ',
      ['./run.sh', '--in=a.txt,b.txt', '-k', '5', 'user@host:1%'],
    ],
  ])('%j is simple', (command, words) => {
    expect(simpleCommandWords(command, env)).toEqual(words);
    expect(taskArgv(command, '/l/1.out', '/l/1.err', env, () => WRAPPER)).toEqual([
      WRAPPER,
      '/l/1.out',
      '/l/1.err',
      command,
      ...words,
    ]);
  });

  it.each([
    'true', // a builtin (no slash): bash runs it itself
    'sleep 1', // a PATH search, an alias or a function could apply
    'A=/x /bin/env', // an assignment
    'X=/bin/true', // an assignment only
    "/bin/echo 'a b'",
    '/bin/echo "$HOME"',
    '/bin/echo $HOME',
    '/bin/echo ~',
    '/bin/ls *.txt',
    '/bin/ls a?',
    '/bin/ls [ab]',
    '/bin/echo {a,b}',
    '/bin/true; /bin/false',
    '/bin/true && /bin/false',
    '/bin/true | /bin/cat',
    '/bin/true &',
    '/bin/echo > /tmp/x',
    '/bin/cat < /etc/passwd',
    '/bin/true # comment',
    '/bin/echo \\n',
    '/bin/echo `id`',
    '/bin/echo $(id)',
    '/bin/true\n/bin/false',
    '/bin/echo\ta',
    '/bin/echo !x',
    '/bin/échо',
    '/proc/self/exe --version',
    '/proc/thread-self/exe -c x',
    '/proc/1234/exe',
    '/dev/fd/3',
    '',
    '   ',
  ])('%j is not', command => {
    expect(simpleCommandWords(command, env)).toBeUndefined();
    expect(taskArgv(command, '/l/1.out', '/l/1.err', env, () => WRAPPER).slice(0, 3)).toEqual([
      WRAPPER,
      '--leave-tty',
      '/bin/bash',
    ]);
  });

  it.each(['BASH_ENV', 'ENV', 'SHELLOPTS', 'BASHOPTS', 'BASH_FUNC_/bin/true%%'])(
    'not with %s in the environment (bash would act on it before the command)',
    name => {
      expect(simpleCommandWords('/bin/true', { ...env, [name]: 'x' })).toBeUndefined();
    },
  );

  it('keeps the bash preamble in /proc mode (its EXIT trap writes `times`, after the wrapper) and where no wrapper was built', () => {
    const bash = ['/bin/bash', '-c', taskScript('/bin/true'), 'bash', '/l/1.out', '/l/1.err'];
    expect(
      taskArgv('/bin/true', '/l/1.out', '/l/1.err', { JTM_TIMES_FILE: '/l/1.times' }, () => WRAPPER),
    ).toEqual([WRAPPER, '--leave-tty', ...bash]);
    expect(taskArgv('/bin/true', '/l/1.out', '/l/1.err', env, () => undefined)).toEqual(bash);
  });
});

describe('the longest command submit accepts', () => {
  it('fits in one argument with the preamble (adversary 15 P5: the last ~800 bytes of the range failed with E2BIG)', () => {
    // Linux's MAX_ARG_STRLEN: 131072 bytes with the terminating NUL. UTF-8 text: the limit is in bytes.
    const script = taskScript('é'.repeat(MAX_COMMAND_BYTES / 2));
    expect(Buffer.byteLength(script) + 1).toBeLessThanOrEqual(131_072);
  });
});
