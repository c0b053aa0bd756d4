import { readFileSync } from 'node:fs';

import { describe, expect, it } from 'vitest';

import { isActive, statusName, TaskStatus } from '../../../src/tasks/status.js';

/**
 * The statuses as README documents them to users (and Cromwell configs rely on): its table pairs each name
 * with its code, two pairs a row. Reading it instead of copying the table here checks code and docs agree.
 */
function documentedStatuses(): Record<string, number> {
  const readme = readFileSync(new URL('../../../README.md', import.meta.url), 'utf8');
  const section = readme.split('## Commands, statuses and exit codes')[1]?.split('\n\n')[1] ?? '';
  const statuses: Record<string, number> = {};
  for (const row of section.split('\n').slice(2)) {
    const cells = row.split('|').map(c => c.trim());
    for (const [name, code] of [cells.slice(1, 3), cells.slice(4, 6)]) {
      if (name) statuses[name] = Number.parseInt(code ?? '', 10);
    }
  }
  return statuses;
}

describe('status codes', () => {
  it("are README's table (the original JTM's codes)", () => {
    const documented = documentedStatuses();
    expect(Object.keys(documented)).toHaveLength(12);
    expect(TaskStatus).toEqual(documented);
  });

  it('ready, queued, pending and running are active; every other code is final', () => {
    const active = new Set(['ready', 'queued', 'pending', 'running']);
    for (const [name, code] of Object.entries(TaskStatus)) expect(isActive(code)).toBe(active.has(name));
    expect(statusName(99)).toBe('invalidtask');
  });
});
