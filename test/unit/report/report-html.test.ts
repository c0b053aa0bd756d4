import { describe, expect, it } from 'vitest';

import { analyse } from '../../../src/report/analyse.js';
import { reportHtml } from '../../../src/report/report-html.js';
import { parseTaskRecord, type TaskRecord } from '../../../src/store/task-record.js';

const rec = (id: number): TaskRecord =>
  parseTaskRecord({
    id: String(id),
    status: '4',
    command: 'echo hi',
    pool: 'p',
    attempts: '1',
    max_retries: '1',
    queued_at: '1000',
    started_at: '2000',
    ended_at: '2010',
    peak_rss_mb: '0',
    cpu_time_s: '0',
  }) as TaskRecord;

describe('the report page', () => {
  // Adversary 14 F3: tasks shorter than the sample interval have no samples; their section was empty, no word.
  it('says why the CPU and memory section has no chart when no heavy task has samples', () => {
    const { data } = analyse([rec(1), rec(2)], {}, 5000);
    data.heaviest = [1, 2].map(id => ({
      id,
      group: 'echo',
      status_name: 'success' as const,
      peak_rss_mb: 0,
      cpu_time_s: 0,
      samples: { t: [], cpu: [], mem_mb: [] },
    }));
    expect(reportHtml(data)).toContain('<p class="empty">no resource samples: these tasks ended before');
    data.heaviest = [];
    expect(reportHtml(data)).toContain('<p class="empty">no resource usage recorded</p>');
  });
});
