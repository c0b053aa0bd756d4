import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { CONFIG_KEYS, loadConfig } from '../../src/config.js';
import { InvalidInputError } from '../../src/errors.js';

/*
 * D6 of the adversarial test: unknown and duplicate keys of a --config file were silently ignored (a typo'd
 * JTM_PREFX fell back to {jtm}: isalive of a Cromwell stanza answered "dead" for every call). They are refused
 * like a task file's; the environment is not checked so (other programs set JTM_* variables there too).
 */
describe('config file keys', () => {
  const dir = mkdtempSync(join(tmpdir(), 'jtm-cfgkeys-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  let n = 0;
  const file = (text: string): string => {
    const p = join(dir, `c${n++}.env`);
    writeFileSync(p, text);
    return p;
  };

  it('refuses an unknown key with one line naming the file, the line and the nearest key', () => {
    const p = file('REDIS_URL=redis://127.0.0.1:1\nJTM_PREFX={advt}\n');
    expect(() => loadConfig({}, {}, p)).toThrow(InvalidInputError);
    expect(() => loadConfig({}, {}, p)).toThrow(
      `config file ${p}:2: unknown key JTM_PREFX (did you mean JTM_PREFIX? .env.example lists every key)`,
    );
    expect(() => loadConfig({}, {}, file('JTM_LOG_LEVL=debug\n'))).toThrow('did you mean JTM_LOG_LEVEL?');
    expect(() => loadConfig({}, {}, file('JTM_TASK_RETRIEs=3\n'))).toThrow('did you mean JTM_TASK_RETRIES?');
    expect(() => loadConfig({}, {}, file('FOO=1\n'))).toThrow(
      /:1: unknown key FOO \(\.env\.example lists every key\)$/,
    );
  });

  it('refuses a key given twice (which one is meant?)', () => {
    const p = file('JTM_PREFIX={advt}\n# comment\nexport JTM_PREFIX={other}\n');
    expect(() => loadConfig({}, {}, p)).toThrow(
      `config file ${p}:3: JTM_PREFIX given twice (line 1 too: which one is meant?)`,
    );
  });

  it('accepts every key .env.example lists, REDIS_URL and the JTM_REDIS_URL alias', () => {
    const example = readFileSync(new URL('../../.env.example', import.meta.url), 'utf8');
    const listed = [...example.matchAll(/^([A-Z_]+)=/gm)].map(m => m[1]);
    expect([...CONFIG_KEYS].filter(k => k !== 'JTM_REDIS_URL').sort()).toEqual([...listed].sort());
    const c = loadConfig({}, {}, file(example.replace('JTM_PREFIX={jtm}', 'JTM_PREFIX={fromfile}')));
    expect(c.prefix).toBe('{fromfile}');
    expect(loadConfig({}, {}, file('JTM_REDIS_URL=redis://h:1\n')).redisUrl).toBe('redis://h:1');
  });

  it('does not refuse unknown variables of the environment', () => {
    expect(loadConfig({ JTM_PREFX: 'x', JTM_CONTENT_TYPE: 'json', FOO: '1' }).prefix).toBe('{jtm}');
  });
});
