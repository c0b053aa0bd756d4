import { describe, expect, it } from 'vitest';

import { callSize, largestOf, oversizedCalls, specOfSize } from '../../../src/pools/call-sizes.js';

/** The calls of a shared pool whose allocation Slurm refused for good (adversary 25 F2). */
describe('oversizedCalls', () => {
  const ok = callSize({ name: 'p', time: '00:03:00', cpu: 1, mem: '205M' });
  const huge = callSize({ name: 'p', time: '00:03:00', cpu: 1, mem: '100000G' });
  const cpu4 = callSize({ name: 'p', time: '00:03:00', cpu: 4, mem: '205M' });

  it('the call asking the most memory fails alone; the others are kept', () => {
    const queued = new Map([
      [1, ok],
      [2, huge],
      [3, ok],
    ]);
    expect(oversizedCalls(queued, [], largestOf(queued.values()))).toEqual([2]);
  });

  it('so does one asking more CPUs than the node has, and one asking both (each largest in one dimension)', () => {
    const queued = new Map([
      [1, ok],
      [2, cpu4],
      [3, huge],
    ]);
    expect(oversizedCalls(queued, [], largestOf(queued.values()))).toEqual([2, 3]);
  });

  it('calls that all ask the same fail together, as before', () => {
    const queued = new Map([
      [1, huge],
      [2, huge],
    ]);
    expect(oversizedCalls(queued, [], largestOf(queued.values()))).toBe('all');
  });

  it('an allocation larger than any queued or running call needs (its call ended): none fails, the spec shrinks', () => {
    expect(oversizedCalls(new Map([[1, ok]]), [], huge)).toBe('none');
    expect(oversizedCalls(new Map([[1, ok]]), [huge], huge)).toBe('all');
  });
});

describe('specOfSize', () => {
  it("sets memory, CPUs and time to the remaining calls' most, keeps the rest; none left: the site defaults", () => {
    const spec = { name: 'p', cluster: 'test', time: '01:00:00', mem: '100000G', cpu: 4, partition: 'debug' };
    expect(specOfSize(spec, callSize({ name: 'p', time: '00:03:00', mem: '0.5G', cpu: 1 }))).toEqual({
      ...spec,
      time: '00:03:00',
      mem: '512M',
      cpu: 1,
    });
    expect(specOfSize(spec, largestOf([]))).toEqual({
      name: 'p',
      cluster: 'test',
      time: '01:00:00',
      partition: 'debug',
    });
  });
});
