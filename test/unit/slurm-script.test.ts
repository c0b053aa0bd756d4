import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { describe, expect, it } from 'vitest';

import { loadConfig } from '../../src/config.js';
import { silentLogger } from '../../src/logger.js';
import { maskUrl } from '../../src/redis/connection.js';
import { perCpuNodeMemoryMb, renderBatchScript } from '../../src/slurm/batch-script.js';
import { workerOptionsFromFlags, type WorkerFlags } from '../../src/cli/worker-cli.js';
import { allocationTime, batchParams, submitDynamicWorkers } from '../../src/slurm/submit-workers.js';
import { parseSiteConfig, resolveCluster } from '../../src/slurm/site-profiles.js';
import { quote } from '../../src/slurm/shell.js';
import { ROOT } from '../helpers/cli.js';
import { waitFor } from '../helpers/env.js';

const SITES = join(ROOT, 'examples', 'sites.json');
const GOLDEN = join(ROOT, 'test', 'golden');

function config(extra: Record<string, string> = {}) {
  return loadConfig({
    HOME: '/home/op',
    REDIS_URL: 'redis://jtm:s3cret-pw@redis.example.org:6379/0',
    JTM_PREFIX: '{jtm}',
    JTM_LOG_DIR: '/scratch/jtm/log',
    JTM_SITE_CONFIG: SITES,
    JTM_COMMAND: '/opt/jtm/bin/jtm',
    ...extra,
  });
}

async function dryRun(request: Record<string, unknown>): Promise<string> {
  const r = await submitDynamicWorkers(
    { worker_id: 'wgolden', dry_run: true, ...request },
    config(),
    silentLogger(),
  );
  expect(r.exitCode).toBe(0);
  return r.output;
}

/** Compares with test/golden/<name>; UPDATE_GOLDEN=1 rewrites the file. */
function golden(name: string, text: string): void {
  const path = join(GOLDEN, name);
  if (process.env['UPDATE_GOLDEN'] === '1') {
    mkdirSync(GOLDEN, { recursive: true });
    writeFileSync(path, text);
  }
  expect(text).toBe(readFileSync(path, 'utf8'));
}

describe('batch scripts per site profile (golden files)', () => {
  const cases: [string, Record<string, unknown>][] = [
    [
      'perlmutter',
      { cluster: 'perlmutter', pool_name: 'big', job_time: '02:00:00', nnodes: 2, num_worker_per_node: 4 },
    ],
    [
      'dori',
      { cluster: 'dori', pool_name: 'small_wf-1', mem: '10', cpus_per_task: 4, 'idle-timeout': '10m' },
    ],
    [
      'tahoma',
      { cluster: 'tahoma', pool_name: 'himem', job_time: '1-00:00:00', partition: 'analysis', qos: 'high' },
    ],
    ['test', { cluster: 'test', pool_name: 'ci', job_time: '00:02:00', 'sbatch-arg': ['--comment=jtm'] }],
  ];
  for (const [name, request] of cases) {
    it(`${name}`, async () => {
      const script = await dryRun(request);
      golden(`slurm-${name}.sh`, script);
      expect(script).not.toContain('s3cret-pw');
      expect(script).toContain("export REDIS_URL='redis://jtm:***@redis.example.org:6379/0'");
    });
  }

  it('passes --task-mem-limit and --shutdown-grace on to the workers, validated; refuses --lifetime (adversary 34 M2)', async () => {
    const base = { cluster: 'test', pool_name: 'ci', job_time: '00:10:00' };
    const script = await dryRun({ ...base, 'task-mem-limit': '1.5G', 'shutdown-grace': '7s' });
    expect(script).toMatch(/ --task-mem-limit 1572864K /);
    expect(script).toMatch(/ --shutdown-grace 7000ms /);
    // The worker started by the script takes them as they are written.
    expect(
      workerOptionsFromFlags({
        pool_name: 'ci',
        'task-mem-limit': '1572864K',
        'shutdown-grace': '7000ms',
      } as WorkerFlags),
    ).toMatchObject({ taskMemLimitBytes: 1572864 * 1024, shutdownGraceMs: 7000 });
    await expect(dryRun({ ...base, 'task-mem-limit': 'x$(touch /tmp/pwned)' })).rejects.toThrow(
      /--task-mem-limit/,
    );
    await expect(dryRun({ ...base, 'shutdown-grace': "x'y" })).rejects.toThrow(/--shutdown-grace/);
    await expect(dryRun({ ...base, lifetime: '1h' })).rejects.toThrow(/--lifetime is for a worker run here/);
  });

  it('takes JTM_COMMAND as plain shell words only: no line break, `;`, `$(…)`, quote or backslash reaches the script (adversary 34 M5)', () => {
    const request = { cluster: 'test', pool_name: 'ci', job_time: '00:10:00' };
    for (const bad of [
      'jtm\ntouch /tmp/pwned',
      'jtm; touch /tmp/pwned',
      '$(touch /tmp/pwned)',
      '`touch /tmp/pwned`',
      'jtm "a b"',
      'jtm \\x',
      "jtm 'unclosed",
    ])
      expect(() => batchParams(request, config({ JTM_COMMAND: bad })), bad).toThrow(
        /JTM_COMMAND=.* is not plain words/,
      );
    for (const good of ['/opt/jtm/bin/jtm', "'/opt/my jtm/bin/jtm'", '/usr/bin/node /opt/jtm-1.2/bin/run.js'])
      expect(renderBatchScript(batchParams(request, config({ JTM_COMMAND: good })))).toContain(
        `${good} worker`,
      );
  });

  it("books the pool's time, the slack and a minute for the workers' start (adversary 7 H3)", () => {
    // With a slack of 30 s, a task as long as the pool's time fitted no worker (each counts its life from its
    // own start), and the manager booked allocation after allocation for it.
    expect(allocationTime('00:05:00', loadConfig({ JTM_SLURM_TIME_SLACK: '30s' }))).toBe('00:06:30');
    expect(allocationTime('00:30:00', loadConfig({}))).toBe('00:36:00');
  });

  it('masks every form of Redis credentials in a printed script, as the logs do', async () => {
    for (const url of ['redis://s3cret-pw@h:6379', 'rediss://:s3cret-pw@h:6380/0']) {
      const r = await submitDynamicWorkers(
        { worker_id: 'wmask', dry_run: true, cluster: 'test', pool_name: 'ci', job_time: '00:02:00' },
        config({ REDIS_URL: url }),
        silentLogger(),
      );
      expect(r.output).not.toContain('s3cret-pw');
      expect(r.output).toContain(`export REDIS_URL='${maskUrl(url)}'`);
    }
  });

  it('passes JTM_SHARDS to the workers of a sharded site only (unsharded scripts are unchanged)', async () => {
    const request = {
      worker_id: 'wgolden',
      dry_run: true,
      cluster: 'test',
      pool_name: 'ci',
      job_time: '00:02:00',
    };
    const sharded = await submitDynamicWorkers(request, config({ JTM_SHARDS: '3' }), silentLogger());
    expect(sharded.output).toContain('export JTM_SHARDS=3\n');
    expect(await dryRun({ cluster: 'test', pool_name: 'ci', job_time: '00:02:00' })).not.toContain(
      'JTM_SHARDS',
    );
  });

  it('hands every setting a worker reads to the workers it starts, whatever file or environment gave it', async () => {
    // Values other than the defaults, as a `--config` file would give them: sbatch carries the manager's
    // environment, never its file, so the script must say each one (JTM_ACCOUNTING=procfs in a site's file
    // was dropped, and its Slurm workers used cgroups).
    const given = {
      JTM_ACCOUNTING: 'procfs',
      JTM_MEM_AVAILABLE_MARGIN: '0.5K',
      JTM_OUTPUT_TAIL_BYTES: '4096',
      JTM_OUTPUT_KEEP_BYTES: '512',
      JTM_LOCK_DURATION: '45s',
      JTM_STALLED_INTERVAL: '20s',
      JTM_WATCH_INTERVAL: '400ms',
      JTM_LOG_REPEAT_INTERVAL: '2m',
      JTM_HEARTBEAT_INTERVAL: '3s',
      JTM_KILL_GRACE: '9s',
      JTM_TASK_RETRIES: '4',
    };
    const manager = config(given);
    const r = await submitDynamicWorkers(
      { worker_id: 'w', dry_run: true, cluster: 'test', pool_name: 'ci', job_time: '00:02:00' },
      manager,
      silentLogger(),
    );
    const exported: Record<string, string> = { HOME: '/home/op' };
    for (const m of r.output.matchAll(/^export (\w+)=(.*)$/gm)) {
      exported[m[1] as string] = (m[2] as string).replace(/^'(.*)'$/, '$1');
    }
    exported['REDIS_URL'] = 'redis://jtm:s3cret-pw@redis.example.org:6379/0';
    const worker = loadConfig(exported);
    const workerSide = [
      'accounting',
      'memAvailableMarginBytes',
      'outputTailBytes',
      'outputKeepBytes',
      'lockDurationMs',
      'stalledIntervalMs',
      'watchIntervalMs',
      'logRepeatIntervalMs',
      'heartbeatIntervalMs',
      'missedBeats',
      'sampleIntervalMs',
      'killGraceMs',
      'taskRetentionMs',
      'taskRetries',
      'connectTimeoutMs',
      'logDir',
      'logLevel',
      'prefix',
      'shards',
    ] as const;
    for (const k of workerSide) expect([k, worker[k]]).toEqual([k, manager[k]]);
    expect(worker.memAvailableMarginBytes).toBe(512);
  });

  it('uses the site default cluster when none is given, and shortens the warning for short allocations', async () => {
    const script = await dryRun({ pool_name: 'p', job_time: '00:04:00' });
    expect(script).toContain('--cluster dori');
    expect(script).toContain('#SBATCH --signal=B:USR1@120');
  });

  it("takes Slurm's feature expressions as constraints, on the #SBATCH line as given (adversary 15 P13)", async () => {
    for (const constraint of ['gpu&hbm80g', 'knl|haswell', '[rack1*2&rack2*4]', '(a|b)&c']) {
      const script = await dryRun({ cluster: 'test', pool_name: 'p', job_time: '00:10:00', constraint });
      expect(script.split('\n')).toContain(`#SBATCH --constraint=${constraint}`);
    }
  });

  it("books memory asked per CPU (-mc) over the site's default per node, and the workers share it (adversary 15 P1)", async () => {
    // perlmutter's profile has mem 200G: before, -mc 2G booked --mem=200G and the workers got --mem 200G.
    const script = await dryRun({
      cluster: 'perlmutter',
      pool_name: 'big',
      job_time: '04:00:00',
      cpus_per_task: 64,
      num_worker_per_node: 2,
      mem_per_cpu: '2G',
    });
    expect(script).toMatch(/^#SBATCH --mem-per-cpu=2G$/m);
    expect(script).not.toMatch(/--mem=|--mem '?200G/);
    // The workers are told the node's memory, 2 GB × the 64 CPUs booked, and share it: 128 GB ÷ (2 × 4).
    expect(script).toContain('--mem 131072M --mem_per_cpu 2G');
    const worker = workerOptionsFromFlags({
      pool_name: 'big',
      worker_type: 'dynamic',
      mem: '131072M',
      mem_per_cpu: '2G',
      cpus_per_task: 32,
      num_worker_per_node: 2,
      slots: 4,
    } as WorkerFlags);
    expect(worker.taskMemLimitBytes).toBe(16 * 1024 ** 3);
    // -c smaller than -nwpn: each worker is told 1 CPU, but they share the 2 CPUs' memory booked, not 4 × one's
    // (review: the tasks could reach twice what the job has).
    const few = await dryRun({
      cluster: 'test',
      pool_name: 'p',
      job_time: '01:00:00',
      cpus_per_task: 2,
      num_worker_per_node: 4,
      mem_per_cpu: '2G',
    });
    expect(few).toContain('--mem 4096M --mem_per_cpu 2G');
    expect(perCpuNodeMemoryMb('2G', undefined)).toBe(2048);
  });

  it('starts the workers of a one-node allocation without srun, several nodes with one srun step', async () => {
    const one = await dryRun({ cluster: 'test', pool_name: 'p', job_time: '00:10:00' });
    expect(one).not.toMatch(/^\s*srun /m);
    expect(one).toMatch(/^#SBATCH --signal=B:USR1@300$/m);
    expect(one).toMatch(/^jtm_node$/m);
    const two = await dryRun({ cluster: 'test', pool_name: 'p', job_time: '00:10:00', nnodes: 2 });
    expect(two).toMatch(/^srun --nodes=2 --ntasks-per-node=1 --kill-on-bad-exit=0 \/bin\/bash -c jtm_node$/m);
    expect(two).toMatch(/^#SBATCH --signal=USR1@300$/m);
  });
});

describe('warning signal of a one-node allocation', () => {
  it('the batch shell hands USR1 on to every worker and keeps waiting for them', async () => {
    const { spawn } = await import('node:child_process');
    const { mkdtempSync, rmSync, readdirSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const dir = mkdtempSync(join(tmpdir(), 'jtm-usr1-'));
    try {
      // Stand-in workers: each notes the USR1 it gets, then exits on TERM (as a drained worker would).
      const worker = join(dir, 'worker.sh');
      writeFileSync(
        worker,
        `#!/bin/bash\nid=\${@: -1}\ntrap 'echo usr1 > ${dir}/got-$id' USR1\ntrap 'exit 0' TERM\n` +
          `echo $$ > ${dir}/up-$id\nwhile :; do sleep 0.05; done\n`,
        { mode: 0o755 },
      );
      const script = renderBatchScript(
        batchParams(
          { cluster: 'test', pool_name: 'sig', job_time: '00:05:00', num_worker_per_node: 2 },
          config({ JTM_COMMAND: worker }),
        ),
      ).replace(/^echo "jtm: .*$/m, 'echo ready');
      const shell = spawn('/bin/bash', ['-c', script], {
        env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', SLURM_JOB_ID: '7' },
        stdio: 'ignore',
      });
      const named = (prefix: string) => readdirSync(dir).filter(f => f.startsWith(prefix));
      const files = (prefix: string) => named(prefix).length;
      try {
        await waitFor(() => files('up-') === 2, 'both workers to start', 10_000, 20);
        // What `--signal=B:USR1@N` (or `scancel --batch --signal=USR1`) does: the batch shell alone.
        shell.kill('SIGUSR1');
        await waitFor(() => files('got-') === 2, 'both workers to get USR1', 10_000, 20);
        expect(shell.exitCode).toBeNull();
      } finally {
        const exited = new Promise(r => shell.once('exit', r));
        for (const f of named('up-')) process.kill(Number(readFileSync(join(dir, f), 'utf8')), 'SIGTERM');
        await exited;
      }
      expect(shell.exitCode).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('validation and injection', () => {
  const cfg = config();
  const ok = { cluster: 'test', pool_name: 'p', job_time: '00:10:00' };
  it.each([
    [{ pool_name: 'a;rm -rf ~' }, /invalid pool name/],
    [{ pool_name: '$(reboot)' }, /invalid pool name/],
    [{ partition: 'debug;rm -rf ~' }, /invalid partition/],
    [{ qos: 'q`id`' }, /invalid qos/],
    [{ charging_account: 'a b' }, /invalid account/],
    [{ constraint: "x'y" }, /invalid constraint/],
    [{ constraint: 'gpu hbm80g' }, /invalid constraint/],
    [{ constraint: 'gpu&$(id)' }, /invalid constraint/],
    [{ job_time: '1:00; reboot' }, /invalid job time/],
    [{ mem: '10G; reboot' }, /invalid memory/],
    [{ 'sbatch-arg': ['--comment=$(rm -rf ~)'] }, /invalid --sbatch-arg/],
    [{ 'sbatch-arg': ['--comment=a b'] }, /invalid --sbatch-arg/],
    // What JTM writes itself is not contradicted (a second --time: the workers' end of life from -t, Slurm's
    // from the last one), nor is the allocation made something else.
    [
      { 'sbatch-arg': ['--time=99:00:00'] },
      /--sbatch-arg --time=99:00:00 is refused: JTM writes --time itself/,
    ],
    [{ 'sbatch-arg': ['--signal=KILL@60'] }, /JTM writes --signal itself/],
    [{ 'sbatch-arg': ['--output=/tmp/x'] }, /JTM writes --output itself/],
    [{ 'sbatch-arg': ['--chdir=/'] }, /JTM writes --chdir itself/],
    [{ 'sbatch-arg': ['--job-name=x'] }, /JTM writes --job-name itself/],
    [{ partition: 'debug', 'sbatch-arg': ['--partition=other'] }, /JTM writes --partition itself/],
    // Slurm takes one of --mem and --mem-per-cpu (adversary 15 P1: one of two was dropped without a word).
    [{ mem: '10G', mem_per_cpu: '2G' }, /memory per node \(-m\) or per CPU \(-mc\), not both/],
    [{ mem: '10G', 'sbatch-arg': ['--mem-per-cpu=2G'] }, /is refused: JTM writes --mem-per-cpu itself/],
    [
      { mem_per_cpu: '2G', 'sbatch-arg': ['--mem-per-gpu=2G'] },
      /is refused: JTM writes --mem-per-gpu itself/,
    ],
    [{ 'sbatch-arg': ['--wrap=id'] }, /the batch script is JTM's/],
    [{ 'sbatch-arg': ['--parsable'] }, /reads sbatch's answer itself/],
    [{ 'sbatch-arg': ['-W'] }, /must not wait/],
    // Short forms of what JTM writes (a bare `#SBATCH -t` was accepted beside JTM's --time).
    [{ 'sbatch-arg': ['-t'] }, /--sbatch-arg -t is refused: JTM writes --time itself/],
    [{ 'sbatch-arg': ['-o'] }, /JTM writes --output itself/],
    [{ 'sbatch-arg': ['-D'] }, /JTM writes --chdir itself/],
    [{ 'sbatch-arg': ['--hold'] }, /must start when Slurm allocates/],
    // Time and start are the workers' (adversary 25 F7).
    [{ 'sbatch-arg': ['--time-min=1'] }, /lasts the time JTM asks/],
    [{ 'sbatch-arg': ['--begin=now+1year'] }, /must start when Slurm allocates/],
    [{ 'sbatch-arg': ['-b'] }, /must start when Slurm allocates/],
    [{ 'sbatch-arg': ['--dependency=afterok:1'] }, /must start when Slurm allocates/],
    [{ 'sbatch-arg': ['--deadline=now+1hour'] }, /lasts the time JTM asks/],
    [{ 'sbatch-arg': ['--array=1-3'] }, /one allocation per request/],
    // The cluster is the site profile's: the manager follows and cancels its jobs there.
    [{ 'sbatch-arg': ['--clusters=other'] }, /sbatch_flags choose the cluster/],
    [{ 'sbatch-arg': ['-M'] }, /sbatch_flags choose the cluster/],
    // sbatch takes any unambiguous prefix of a long option, in #SBATCH lines too (adversary 39 F4): read as it reads them.
    [
      { 'sbatch-arg': ['--job-nam=x'] },
      /--job-nam=x is refused: sbatch reads it as --job-name: JTM writes --job-name itself/,
    ],
    [{ 'sbatch-arg': ['--hol'] }, /sbatch reads it as --hold: the workers must start when Slurm allocates/],
    [{ 'sbatch-arg': ['--be=now+1hour'] }, /sbatch reads it as --begin: the workers must start/],
    [{ 'sbatch-arg': ['--dep=afterok:1'] }, /sbatch reads it as --dependency: the workers must start/],
    [{ 'sbatch-arg': ['--dea=now'] }, /sbatch reads it as --deadline/],
    [{ 'sbatch-arg': ['--arr=1-3'] }, /sbatch reads it as --array: one allocation per request/],
    [{ 'sbatch-arg': ['--wra=id'] }, /sbatch reads it as --wrap/],
    [{ 'sbatch-arg': ['--sig=KILL@1'] }, /sbatch reads it as --signal: JTM writes --signal itself/],
    [{ 'sbatch-arg': ['--outp=/tmp/x'] }, /sbatch reads it as --output: JTM writes --output itself/],
    [{ 'sbatch-arg': ['--err=/tmp/x'] }, /sbatch reads it as --error: JTM writes --error itself/],
    [{ 'sbatch-arg': ['--chd=/'] }, /sbatch reads it as --chdir: JTM writes --chdir itself/],
    [{ 'sbatch-arg': ['--parsabl'] }, /sbatch reads it as --parsable/],
    [{ 'sbatch-arg': ['--test-on'] }, /sbatch reads it as --test-only/],
    [{ 'sbatch-arg': ['--time-m=1'] }, /sbatch reads it as --time-min/],
    [{ partition: 'debug', 'sbatch-arg': ['--partit=x'] }, /sbatch reads it as --partition: JTM writes/],
    [{ qos: 'q', 'sbatch-arg': ['--qo=x'] }, /sbatch reads it as --qos: JTM writes/],
    [{ charging_account: 'a', 'sbatch-arg': ['--accou=x'] }, /sbatch reads it as --account: JTM writes/],
    [{ constraint: 'c', 'sbatch-arg': ['--const=x'] }, /sbatch reads it as --constraint: JTM writes/],
    // Ambiguous prefixes (sbatch refuses them too) and sbatch's other names of an option.
    [
      { 'sbatch-arg': ['--clu=x'] },
      /--clu=x is refused: sbatch cannot tell which of --cluster, --cluster-constraint, --clusters/,
    ],
    [{ 'sbatch-arg': ['--cl=x'] }, /sbatch cannot tell which/],
    [{ 'sbatch-arg': ['--acc=x'] }, /sbatch cannot tell which of --account, --acctg-freq/],
    [{ 'sbatch-arg': ['--ti=1'] }, /sbatch cannot tell which of --time, --time-min/],
    [{ 'sbatch-arg': ['--mem-per=1G'] }, /sbatch cannot tell which of --mem-per-cpu, --mem-per-gpu/],
    [{ 'sbatch-arg': ['--nod=3'] }, /sbatch cannot tell which/],
    [{ 'sbatch-arg': ['--wai'] }, /sbatch cannot tell which of --wait, --wait-all-nodes/],
    [{ 'sbatch-arg': ['--cluster=x'] }, /sbatch_flags choose the cluster/],
    [{ 'sbatch-arg': ['--tasks-per-node=2'] }, /JTM writes --ntasks-per-node itself/],
    [{ worker_id: 'w;x' }, /invalid worker id/],
    [{ job_script_dir_name: '/tmp/a b' }, /job directory "\/tmp\/a b" holds a space, which Slurm cannot/],
    [{ job_script_dir_name: '/tmp/a%j' }, /holds "%", which Slurm/],
    [{ job_script_dir_name: "/tmp/it's" }, /holds "'", which Slurm/],
    [{ job_script_dir_name: '/tmp/a#b' }, /holds "#", which Slurm/],
    [{ job_script_dir_name: '/tmp/a\tb' }, /holds white space/],
    [
      { cluster: 'nosuch' },
      /unknown cluster "nosuch"; known clusters: local, perlmutter, dori, tahoma, test/,
    ],
    [{ cluster: 'local' }, /cluster "local" has no Slurm/],
    [{ num_worker_per_node: 100_000 }, /^workers per node \(-nwpn\) must be an integer from 1 to 256/],
    // Nodes and CPUs as a submit's (adversary 25 F8: written --nodes=100000000000000000000).
    [{ nnodes: 1e20 }, /^nodes \(-N\) must be an integer from 1 to 1000000/],
    [{ cpus_per_task: 2_000_000 }, /^cpus per task \(-c\) must be an integer from 1 to 1000000/],
    // Memory as a submit's (adversary 25 F8: -m 999999999999T was written into the script).
    [{ mem: '999999999999T' }, /^memory \(-m\) must be at most 1000000000 GB$/],
    [{ mem_per_cpu: '999999999999T' }, /^memory per cpu \(-mc\) must be at most 1000000000 GB$/],
  ])('rejects %j', (bad, message) => {
    // the job directory is checked where the script is rendered, the rest when the request is read
    expect(() => renderBatchScript(batchParams({ ...ok, ...bad }, cfg))).toThrow(message);
  });

  it('takes the sbatch options no JTM line or refusal covers, full or abbreviated (adversary 39 F4)', () => {
    const allowed = [
      '--gres=gpu:1',
      '--exclusive',
      '--comment=x',
      '--ntasks=2',
      '--mail-type=END',
      '--gres-f=x',
      '-L',
      '--licen=x',
    ];
    const script = renderBatchScript(batchParams({ ...ok, 'sbatch-arg': allowed }, cfg));
    for (const o of allowed) expect(script).toContain(`#SBATCH ${o}\n`);
  });

  it("refuses a wall time over 365 days as submit refuses a pool's (adversary 39 F5)", async () => {
    const request = { cluster: 'test', pool_name: 'p' };
    await expect(dryRun({ ...request, job_time: '99999999:00:00' })).rejects.toThrow(
      /^job time \(-t\) 99999999:00:00 is longer than the maximum of 365 days$/,
    );
    await expect(dryRun({ ...request, job_time: '365-00:00:01' })).rejects.toThrow(/maximum of 365 days/);
    expect(await dryRun({ ...request, job_time: '365-00:00:00' })).toContain('#SBATCH --time=365-00:00:00\n');
  });

  it("takes a job directory with braces (a prefix's default log dir), punctuation or non-ASCII letters (adversary 12 D3)", () => {
    // JTM_PREFIX={jtma} makes the default log dir ~/.jtm/log/prefix-{jtma}: its own check refused it, and the
    // manager failed every queued task of every dynamic pool, blaming "spaces, quotes or '%'".
    for (const dir of ['/home/a/.jtm/log/prefix-{jtma}/job', '/tmp/a!b(c)&[d]$e;f', '/scratch/été']) {
      const script = renderBatchScript(batchParams({ ...ok, job_script_dir_name: dir }, cfg));
      expect(script).toContain(`#SBATCH --chdir=${dir}\n`);
    }
  });

  it('quotes what it cannot validate', () => {
    expect(quote("it's")).toBe(`'it'\\''s'`);
    expect(quote('{jtm}')).toBe(`'{jtm}'`);
    expect(quote('/a/b.c')).toBe('/a/b.c');
  });

  it('rejects bad site files with the offending field', () => {
    expect(() => parseSiteConfig({ clusters: { local: {} } })).toThrow(/built in/);
    expect(() => parseSiteConfig({ clusters: { x: { sbatch: ['--comment=a;b'] } } })).toThrow(
      /invalid option/,
    );
    expect(() => parseSiteConfig({ clusters: { x: { env: ['a\nb'] } } })).toThrow(/one line/);
    // The file is named once (adversary 34 L10: "sites.json: sites.json: cluster x: invalid qos").
    expect(() => parseSiteConfig({ clusters: { x: { defaults: { qos: 'a b' } } } }, 'sites.json')).toThrow(
      /^sites\.json: cluster x: invalid qos "a b"$/,
    );
    // adversary 25 F3: a site default of 100000 workers per node was taken as is
    expect(() => parseSiteConfig({ clusters: { x: { defaults: { nwpn: 100_000 } } } })).toThrow(
      /cluster x: nwpn must be an integer from 1 to 256/,
    );
    expect(() => parseSiteConfig({ clusters: { x: { partiton: 'a' } } })).toThrow(/unknown field "partiton"/);
    expect(() => parseSiteConfig({ default: 'y', clusters: { x: {} } })).toThrow(/"default"/);
    expect(() => resolveCluster(parseSiteConfig({ clusters: {} }), 'x')).toThrow(/known clusters: local$/);
  });

  it('matches a cluster whatever its case, and says profiles are named in lower case (adversary 25 F8)', () => {
    const site = parseSiteConfig({ clusters: { test: {} } });
    expect(resolveCluster(site, 'TEST').name).toBe('test');
    expect(resolveCluster(site, 'Test').name).toBe('test');
    // A profile named with a capital could never be matched: the message says why it is refused.
    expect(() => parseSiteConfig({ clusters: { Test: {} } })).toThrow(
      /^site config: invalid cluster name "Test": use lower-case letters, digits, '_', '\.' or '-' \(at most 64; -cl and a pool's cluster match it whatever their case\)$/,
    );
  });
});

describe('core pinning', () => {
  it("gives each worker of a node its own share of the step's cores, and runs as a script", async () => {
    const params = batchParams(
      { cluster: 'test', pool_name: 'pin', job_time: '00:05:00', num_worker_per_node: 2, 'pin-cores': true },
      config({ JTM_COMMAND: "/bin/sh -c 'grep Cpus_allowed_list: /proc/self/status' sh" }),
    );
    const script = renderBatchScript(params);
    expect(script).toContain('taskset -c');
    const fn = /^jtm_node\(\) \{[\s\S]*?^\}$/m.exec(script)?.[0];
    expect(fn).toBeDefined();
    const { execFileSync } = await import('node:child_process');
    const out = execFileSync('/bin/bash', ['-c', `set -u; ${fn}\njtm_node`], {
      encoding: 'utf8',
      env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', SLURM_JOB_ID: '1' },
    });
    const lists = out
      .trim()
      .split('\n')
      .map(l => l.replace(/^Cpus_allowed_list:\s*/, ''))
      .sort();
    const { availableParallelism } = await import('node:os');
    if (availableParallelism() >= 2) {
      // Two workers, two disjoint shares of the allowed cores.
      expect(lists).toHaveLength(2);
      expect(lists[0]).not.toBe(lists[1]);
    } else {
      expect(lists).toHaveLength(2);
    }
    const unpinned = renderBatchScript({ ...params, pinCores: false });
    expect(unpinned).not.toContain('taskset');
  });
});
