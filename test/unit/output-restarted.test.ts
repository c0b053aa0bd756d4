import { describe, expect, it } from 'vitest';

import { OutputRestartedError } from '../../src/errors.js';

describe('OutputRestartedError', () => {
  // Adversary 36 L4: a run given back by a worker's graceful stop, then run again, was said to be "lost".
  it('says a task run again had an earlier attempt that did not finish, lost or given back by a stop', () => {
    const err = new OutputRestartedError(7, [{ offset: 10, cause: 'run again' }]);
    expect([err.code, err.exitCode]).toEqual(['OUTPUT_RESTARTED', 3]);
    expect(err.message).toBe(
      "task 7's output started over after 10 bytes had been delivered: it was run again (an earlier attempt did not finish); what was delivered before is not part of the output as it stands now (jtm logs -tid 7 prints that)",
    );
  });
});
