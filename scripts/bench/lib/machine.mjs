// What the figures were measured on: they only mean something next to the machine and the commit.
import { execFileSync } from 'node:child_process';
import { cpus, totalmem } from 'node:os';

function run(cmd, args) {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return undefined;
  }
}

export function describeMachine(root) {
  const cpu = cpus()[0]?.model ?? 'unknown';
  const redis = /v=(\S+)/.exec(run('redis-server', ['--version']) ?? '')?.[1] ?? 'unknown';
  const commit = run('git', ['-C', root, 'rev-parse', '--short', 'HEAD']) ?? 'unknown';
  const dirty = (run('git', ['-C', root, 'status', '--porcelain', '--untracked-files=no']) ?? '') !== '';
  return {
    cpu,
    cores: cpus().length,
    memoryGB: Math.round((totalmem() / 1024 ** 3) * 10) / 10,
    node: process.version,
    redis,
    commit: dirty ? `${commit} (+ uncommitted changes)` : commit,
    date: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
    load: run('cat', ['/proc/loadavg'])?.split(' ').slice(0, 3).join(' ') ?? 'unknown',
  };
}
