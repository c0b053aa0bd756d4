import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { describe, expect, inject, it } from 'vitest';

// @ts-expect-error plain JavaScript harness shared with scripts/chaos.mjs
import { markerCommand, readMarker, runChaos } from '../../scripts/lib/chaos.mjs';

interface Run {
  pid: number;
  start: bigint;
  end?: bigint;
}
interface Report {
  seed: number;
  submitted: number;
  submitFailures: number;
  counts: Record<string, number>;
  workerKills: number;
  taskKills: number;
  violations: string[];
}
const harness = {
  markerCommand: markerCommand as (dir: string, seconds: number, exitCode: number) => string,
  readMarker: readMarker as (path: string) => { runs: Run[]; overlaps: string[] },
  runChaos: runChaos as (opts: Record<string, unknown>) => Promise<Report>,
};

describe('chaos harness', () => {
  it('detects two live runs of one task (the detector itself works)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'jtm-marker-'));
    const env = { PATH: process.env['PATH'] ?? '/usr/bin:/bin', JTM_TASK_ID: '7' };
    const cmd = harness.markerCommand(dir, 1.5, 0);
    const { spawn } = await import('node:child_process');
    const first = spawn('bash', ['-c', cmd], { env, stdio: 'ignore' });
    // The second run starts once the first has written its start line.
    for (let i = 0; i < 100 && !readFileSync(join(dir, '7'), { flag: 'a+' }).toString().includes('S '); i++)
      await new Promise(r => setTimeout(r, 50));
    const second = spawnSync('bash', ['-c', cmd], { env });
    await new Promise(r => first.on('exit', r));
    expect(second.status).toBe(0);
    const { runs, overlaps } = harness.readMarker(join(dir, '7'));
    expect(runs).toHaveLength(2);
    expect(overlaps).toHaveLength(1);
    // A run after a finished one is not an overlap.
    const third = spawnSync('bash', ['-c', harness.markerCommand(dir, 0, 3)], { env });
    expect(third.status).toBe(3);
    expect(harness.readMarker(join(dir, '7')).overlaps).toHaveLength(1);
  });

  it('200 tasks on 3 workers × 4 slots under worker SIGKILLs and task kills: one matching final status each, no double run', async () => {
    const report = await harness.runChaos({
      redisUrl: inject('redisUrl'),
      tasks: 200,
      workers: 3,
      slots: 4,
      workerKills: 5,
      taskKillRate: 0.04,
      settleMs: 240_000,
      log: (line: string) => process.stderr.write(`${line}\n`),
    });
    expect(report.violations).toEqual([]);
    expect(report.submitFailures).toBe(0);
    expect(report.submitted).toBe(200);
    expect(Object.values(report.counts).reduce((a, b) => a + b, 0)).toBe(200);
    expect(report.workerKills).toBe(5);
  }, 400_000);
});
