// The pty host refuses a start whose deadline (the worker's lease, less the fencing margin) has passed: a
// worker stopped between its own lease check and the send, or a whole process tree frozen and resumed, must
// not start a copy of a task that another worker may have taken over (chaos seed 1303: two live runs).
import { fork, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

import { afterEach, describe, expect, it } from 'vitest';

import { monotonicMs } from '../../src/worker/monotonic.js';
import type { HostMessage, WorkerMessage } from '../../src/worker/pty-protocol.js';
import { tempDir, waitFor } from '../helpers/env.js';

const HOST = new URL('../../dist/src/worker/pty-host.js', import.meta.url);

let host: ChildProcess | undefined;
afterEach(async () => {
  if (!host) return;
  const h = host;
  host = undefined;
  const gone = new Promise(r => h.once('exit', r));
  // The host kills its tasks and leaves when its worker hangs up.
  if (h.connected) h.disconnect();
  await gone;
});

/** Forks the built host; resolves each request with the host's first answer to it (spawned or error). */
function startHost(): { send: (m: WorkerMessage) => void; answer: (id: number) => Promise<HostMessage> } {
  const h = fork(HOST, [], {
    env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin' },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  host = h;
  const answers = new Map<number, HostMessage>();
  h.on('message', (m: HostMessage) => {
    if ((m.t === 'spawned' || m.t === 'error') && !answers.has(m.id)) answers.set(m.id, m);
  });
  h.send({ t: 'init', env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin' } } satisfies WorkerMessage);
  return {
    send: m => h.send(m),
    answer: id => waitFor(() => answers.get(id), `the host's answer to request ${id}`),
  };
}

function spawnRequest(id: number, marker: string, deadline?: number): WorkerMessage {
  return {
    t: 'spawn',
    id,
    file: '/bin/sh',
    args: ['-c', `touch ${marker}`],
    cwd: '/',
    env: {},
    unset: [],
    token: `deadline-test-${id}`,
    ...(deadline !== undefined ? { deadline } : {}),
  };
}

describe('pty host: the start deadline', () => {
  it('refuses a request past its deadline and starts nothing; starts one before it', async () => {
    const dir = tempDir();
    const h = startHost();
    const late = join(dir, 'late');
    h.send(spawnRequest(1, late, monotonicMs() - 1));
    const refused = await h.answer(1);
    expect(refused).toMatchObject({ t: 'error', id: 1, expired: true });
    expect((refused as { message: string }).message).toMatch(/past the worker's lease/);

    // In time, and without a deadline: started (requests are handled in order, so the refused one is settled).
    const onTime = join(dir, 'on-time');
    h.send(spawnRequest(2, onTime, monotonicMs() + 60_000));
    expect(await h.answer(2)).toMatchObject({ t: 'spawned', id: 2 });
    await waitFor(() => existsSync(onTime), 'the started task to touch its marker');
    const noDeadline = join(dir, 'no-deadline');
    h.send(spawnRequest(3, noDeadline));
    expect(await h.answer(3)).toMatchObject({ t: 'spawned', id: 3 });
    await waitFor(() => existsSync(noDeadline), 'the task without a deadline to touch its marker');
    expect(existsSync(late)).toBe(false);
  });
});
