// Benchmark 3: `jtm isalive`, `jtm status`, `jtm submit` as the cold processes Cromwell runs, against
// `node -e 0` (the floor of any Node CLI). Runs are interleaved so that machine noise hits all alike.
import { BIN, jtmEnv, jtmModule, makeTasks, openJtm, runProcess } from './lib/jtm.mjs';
import { median } from './lib/stats.mjs';

export const COLD_COMMANDS = {
  isalive: id => ['isalive', '-tid', String(id)],
  status: id => ['status', '-tid', String(id)],
  submit: () => ['submit', '-cmd', '/bin/true', '-p', 'bench0'],
};

/** Median wall time (ms) of each command run cold `reps` times, plus `node -e 0`. */
export async function coldTimes(
  redisUrl,
  taskId,
  reps,
  commands = Object.keys(COLD_COMMANDS),
  extraEnv = {},
) {
  const env = jtmEnv(redisUrl, extraEnv);
  const times = { node: [] };
  for (const c of commands) times[c] = [];
  for (let r = 0; r < reps; r++) {
    times.node.push((await runProcess(process.execPath, ['-e', '0'], { env })).ms);
    for (const c of commands) {
      const res = await runProcess(process.execPath, [BIN, ...COLD_COMMANDS[c](taskId)], { env });
      if (res.code !== 0) throw new Error(`jtm ${c} exited ${res.code}: ${res.stderr.trim()}`);
      times[c].push(res.ms);
    }
  }
  return Object.fromEntries(Object.entries(times).map(([k, v]) => [k, median(v)]));
}

export async function run({ quick, redisUrl, log }) {
  const { ctx, close } = await openJtm(redisUrl);
  const { submitTasks } = await jtmModule('tasks/submit-task.js');
  const [id] = await submitTasks(ctx, await makeTasks(1, 1));
  await close();
  const t = await coldTimes(redisUrl, id, quick ? 7 : 21);
  log(
    `  ${Object.entries(t)
      .map(([k, v]) => `${k} ${v.toFixed(0)} ms`)
      .join(', ')}`,
  );
  const targets = { isalive: 3, status: 3, submit: 4 };
  return Object.keys(COLD_COMMANDS).map(c => ({
    id: '3',
    figure: `3. \`jtm ${c}\` cold process, wall time`,
    value: t[c],
    unit: ' ms',
    baselineName: 'node -e 0',
    baseline: t.node,
    ratio: t[c] / t.node,
    target: `≤ ${targets[c]} ×${c === 'status' ? ' (as isalive)' : ''}`,
    pass: t[c] / t.node <= targets[c],
  }));
}
