import { describe, expect, it } from 'vitest';

import { deriveRcFile, rcCodeFor } from '../../../src/tasks/rc-file.js';
import { TaskStatus as S } from '../../../src/tasks/status.js';
import type { TaskRecord } from '../../../src/store/task-record.js';

describe('rc files', () => {
  it.each([
    ['/bin/bash /c/wf/1/call-a/execution/script', '/c/wf/1/call-a/execution/rc'],
    ["bash '/c/x/execution/script'", '/c/x/execution/rc'],
    // An original-style submit-docker: the script is a wrapper's argument (adversary 9 J10).
    ['shifter --image=ubuntu:22.04 /bin/bash /c/wf/1/call-b/execution/script', '/c/wf/1/call-b/execution/rc'],
    ['singularity exec img.sif bash /c/d/execution/script', '/c/d/execution/rc'],
    ['/usr/bin/env bash /c/e/execution/script', '/c/e/execution/rc'],
    ['/c/f/execution/script', '/c/f/execution/rc'],
  ])('derives the rc path of %j', (command, rc) => {
    expect(deriveRcFile(command)).toBe(rc);
  });

  it.each(['echo hi', 'bash /c/execution/script2', 'bash c/execution/script', 'cat /c/execution/script.bak'])(
    'none for %j',
    command => {
      expect(deriveRcFile(command)).toBeUndefined();
    },
  );

  it("writes a failed task's own exit code (its script may never have run: docker run exit 125), never an abort's", () => {
    const failed = (exit_code?: number): TaskRecord =>
      ({ status: S.failed, exit_code }) as unknown as TaskRecord;
    expect(rcCodeFor(failed(125))).toBe(125);
    expect(rcCodeFor(failed(3))).toBe(3);
    expect(rcCodeFor(failed(undefined))).toBe(126);
    for (const abort of [130, 137, 143]) expect(rcCodeFor(failed(abort))).toBe(1);
  });
});
