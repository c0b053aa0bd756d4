import { describe, expect, it } from 'vitest';

import { analyse, type HeavyTask } from '../../../src/report/analyse.js';
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

function samples(n: number): HeavyTask['samples'] {
  const t = Array.from({ length: n }, (_, i) => i * 5);
  return { t, cpu: t.map(() => 50), mem_mb: t.map(() => 100) };
}

function heavy(id: number, fields: Partial<HeavyTask> = {}): HeavyTask {
  return {
    id,
    group: 'echo',
    status_name: 'success',
    why: 'memory',
    peak_rss_mb: 0,
    cpu_time_s: 0,
    run_s: 0.01,
    samples: samples(0),
    ...fields,
  };
}

describe('the report page', () => {
  // Adversary 14 F3: tasks shorter than the sample interval have no samples; their section was empty, no word.
  it('says why the CPU and memory section has no chart when no heavy task has samples', () => {
    const { data } = analyse([rec(1), rec(2)], {}, 5000);
    data.heaviest = [1, 2].map(id => heavy(id, { peak_rss_mb: 0 }));
    const html = reportHtml(data);
    expect(html).toContain('too short for a sample (peak &lt; 1 MB from the kernel)');
    expect(html).not.toContain('chart below');
    data.heaviest = [];
    expect(reportHtml(data)).toContain('<p class="empty">no resource usage recorded</p>');
  });

  // Adversary 37 F3: the two 205 MB tasks without samples were left out without a word, and two flat 2 MB
  // `sleep`s (added as running longest) were the only charts under "the tasks that used the most".
  it('lists every heaviest task with its peak and run time, the running ones apart', () => {
    const { data } = analyse([rec(1)], {}, 5000);
    data.heaviest = [
      heavy(41, { peak_rss_mb: 205, run_s: 0.4, status_name: 'outofresource' }),
      heavy(42, { peak_rss_mb: 205, run_s: 0.9, status_name: 'outofresource', samples: samples(1) }),
      heavy(43, { peak_rss_mb: 167, run_s: 60, samples: samples(12), why: 'cpu' }),
      heavy(77, { peak_rss_mb: 2, run_s: 900, status_name: 'running', why: 'running', samples: samples(99) }),
    ];
    const html = reportHtml(data);
    const section = html.slice(html.indexOf('CPU and memory of the tasks'), html.indexOf('<h2>Failures'));
    const rows = [...section.matchAll(/<tr><td>(\d+)<\/td>(.*?)<\/tr>/g)].map(m => [m[1], m[2]]);
    expect(rows.map(r => r[0])).toEqual(['41', '42', '43', '77']);
    expect(rows[0]?.[1]).toContain('205 MB');
    expect(rows[0]?.[1]).toContain('400 ms');
    expect(rows[0]?.[1]).toContain('too short for a sample (peak 205 MB from the kernel)');
    expect(rows[1]?.[1]).toContain('too short for a chart: 1 sample (peak 205 MB from the kernel)');
    expect(rows[2]?.[1]).toContain('chart below (12 samples)');
    // The running `sleep` is under its own heading, after the tasks that used the most.
    const running = section.indexOf('<h3>Running longest</h3>');
    expect(running).toBeGreaterThan(section.indexOf('<td>43</td>'));
    expect(section.indexOf('<td>77</td>')).toBeGreaterThan(running);
    expect(rows[3]?.[1]).toContain('15 min so far');
  });

  // Adversary 37 F4: records of submits that never committed are counted apart, with a word.
  it('says how many tasks of submits that never committed were left out', () => {
    const never = parseTaskRecord({
      id: '9',
      status: '-2',
      command: 'true',
      pool: 'p',
      attempts: '1',
      queued_at: '1000',
      ended_at: '2000',
      reason: 'submit did not complete',
    }) as TaskRecord;
    const html = reportHtml(analyse([rec(1), never], {}, 5000).data);
    expect(html).toContain('<p id="statuses">1 task: ');
    expect(html).toContain('Not counted here nor below: 1 task of submits that never committed');
    expect(html).toContain('<h2>Failures (0)</h2>');
    expect(reportHtml(analyse([rec(1)], {}, 5000).data)).not.toContain('never committed');
  });

  // Adversary 37 F6: the 30 ms runs of 2,000 `true`s had a mean and median wall time of "0 s".
  it('shows sub-second times in ms', () => {
    const quick = (id: number, ms: number): TaskRecord =>
      parseTaskRecord({
        id: String(id),
        status: '4',
        command: 'true',
        pool: 'p',
        attempts: '1',
        queued_at: '1000',
        started_at: '2000',
        ended_at: String(2000 + ms),
      }) as TaskRecord;
    const html = reportHtml(analyse([quick(1, 30), quick(2, 30), quick(3, 1500)], {}, 5000).data);
    expect(html).toContain(
      '<tr><td>wall time</td><td>3</td><td>520 ms</td><td>30 ms</td><td>1.5 s</td><td>1.5 s</td></tr>',
    );
  });

  // Adversary 21 F8: "1 tasks retried".
  it('counts in the singular when there is one', () => {
    const one = parseTaskRecord({
      id: '1',
      status: '4',
      command: 'true',
      pool: 'p',
      attempts: '2',
      max_retries: '2',
    }) as TaskRecord;
    const html = reportHtml(analyse([one], {}, 5000).data);
    expect(html).toContain('<p id="statuses">1 task: ');
    expect(html).toContain('<p>Attempts: 2 in all, 1 task retried, at most 2 for one task.</p>');
    const two = reportHtml(analyse([rec(1), rec(2)], {}, 5000).data);
    expect(two).toContain('<p id="statuses">2 tasks: ');
    expect(two).toContain('0 tasks retried');
  });

  // Adversary 21 F4: a right-to-left override in a command reversed the report's own "(command)" label.
  it('shows every user string in an isolating <bdi>, and invisible characters of a name as escapes', () => {
    const rlo = '\u202E';
    const failed = (id: number, fields: Record<string, string>): TaskRecord =>
      parseTaskRecord({
        id: String(id),
        command: 'true',
        pool: 'p',
        attempts: '1',
        max_retries: '1',
        queued_at: '1000',
        started_at: '2000',
        ended_at: '2010',
        status: '-1',
        exit_code: '4',
        reason: `reasonmark ${rlo}x`,
        ...fields,
      }) as TaskRecord;
    const records = [
      failed(1, { command: `${rlo}\u2603evilprog; exit 4` }),
      failed(2, { cromwell_job_id: `cromwell_8a3f2c1d_${rlo}callname`, pool: 'poolname' }),
    ];
    const { data } = analyse(records, { pool: 'poolname' }, 5000);
    expect(data.groups.map(g => g.name).sort()).toEqual(['\\u202Ecallname', '\\u202E\u2603evilprog']);
    const html = reportHtml(data);
    // The page without its scripts (the data's JSON, the chart code), and without what is inside <bdi>s:
    // no user string is left, and no bidi control.
    const outside = html.replace(/<script[\s\S]*?<\/script>/g, '').replace(/<bdi>[^<]*<\/bdi>/g, '');
    for (const s of ['evilprog', 'callname', 'poolname', 'reasonmark', rlo]) expect(outside).not.toContain(s);
    expect(html).toContain('<code><bdi>\\u202E\u2603evilprog</bdi></code> <small>(command)</small>');
  });
});
