import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

import { BIN } from '../helpers/cli.js';
import { instantiate, type BackendConfig } from './backend-config.js';

export interface CallSpec {
  /** `<root>/<workflow name>/<workflow id>/call-<call>/`. */
  root: string;
  workflowName: string;
  workflowId: string;
  callName: string;
  /** The WDL task's command section. */
  command: string;
  /** Runtime attributes of the call; the declared defaults fill the rest. */
  runtime?: Record<string, string>;
}

export interface Call {
  spec: CallSpec;
  cwd: string;
  execution: string;
  script: string;
  rc: string;
  jobName: string;
}

export interface CheckAlive {
  code: number | null;
  stdout: string;
}

export interface CallResult {
  rc: number;
  /** Whether Cromwell itself wrote rc=79 (check-alive said dead and no rc came). */
  assumedDead: boolean;
  checks: CheckAlive[];
}

/** Puts `jtm` and the legacy `jtm-<command>` names on a PATH directory, as an installation does. */
export function installJtmShims(dir: string): string {
  mkdirSync(dir, { recursive: true });
  for (const name of ['jtm', 'jtm-submit', 'jtm-isalive', 'jtm-kill', 'jtm-status']) {
    const p = join(dir, name);
    writeFileSync(p, `#!/usr/bin/env node\nimport '${BIN}';\n`);
    chmodSync(p, 0o755);
  }
  return `${dir}:${dirname(process.execPath)}:/usr/bin:/bin`;
}

/**
 * What Cromwell's config backend does for one call (CRW ConfigAsyncJobExecutionActor,
 * SharedFileSystemAsyncJobExecutionActor): lays out the call directory, writes execution/script,
 * runs the instantiated submit/check-alive/kill templates with /bin/bash and reads rc.
 */
export class CromwellEmulator {
  constructor(
    readonly config: BackendConfig,
    readonly env: Record<string, string>,
    /** Overrides the config's exit-code-timeout-seconds (tests use a small N); null: unset. */
    readonly exitCodeTimeoutSeconds: number | null | undefined = undefined,
    readonly pollMs = 250,
  ) {}

  prepare(spec: CallSpec): Call {
    const cwd = join(spec.root, spec.workflowName, spec.workflowId, `call-${spec.callName}`);
    const execution = join(cwd, 'execution');
    mkdirSync(join(cwd, 'inputs'), { recursive: true });
    mkdirSync(execution, { recursive: true });
    const call: Call = {
      spec,
      cwd,
      execution,
      script: join(execution, 'script'),
      rc: join(execution, 'rc'),
      jobName: `cromwell_${spec.workflowId.slice(0, 8)}_${spec.callName}`,
    };
    writeFileSync(call.script, cromwellScript(call), { mode: 0o755 });
    return call;
  }

  /** Runs the submit template; resolves with the job id its regex captures (throws as Cromwell fails). */
  async submit(call: Call): Promise<string> {
    const vars: Record<string, string | undefined> = {
      job_name: call.jobName,
      cwd: call.cwd,
      out: join(call.execution, 'stdout'),
      err: join(call.execution, 'stderr'),
      script: call.script,
      job_shell: '/bin/bash',
    };
    for (const [name, decl] of this.config.runtimeAttributes) {
      vars[name] = call.spec.runtime?.[name] ?? decl.default;
      if (vars[name] === undefined && !decl.optional) throw new Error(`runtime attribute ${name} missing`);
    }
    const r = await this.runTemplate(call, 'submit', instantiate(this.config.submit, vars));
    if (r.code !== 0) throw new Error(`Unable to start job (exit ${r.code}): ${r.stderr}`);
    const m = this.config.jobIdRegex.exec(r.stdout.replace(/\n$/, ''));
    if (!m?.[1]) throw new Error(`Could not find job ID from stdout file: ${r.stdout}`);
    return m[1];
  }

  async checkAlive(call: Call, jobId: string): Promise<CheckAlive> {
    const r = await this.runTemplate(call, 'check', instantiate(this.config.checkAlive, { job_id: jobId }));
    return { code: r.code, stdout: r.stdout.trim() };
  }

  /** Abort: Cromwell writes rc=143 (rc.kill, then an atomic move unless rc exists), then runs kill. */
  async abort(call: Call, jobId: string): Promise<void> {
    const tmp = join(call.execution, 'rc.kill');
    writeFileSync(tmp, '143\n');
    if (!existsSync(call.rc)) renameSync(tmp, call.rc);
    writeFileSync(join(call.execution, 'stderr'), '', { flag: 'a' });
    await this.runTemplate(call, 'kill', instantiate(this.config.kill, { job_id: jobId }));
  }

  /**
   * Polls rc; every N s (exit-code-timeout-seconds) runs check-alive, and when that says dead waits N
   * more seconds for rc before writing 79 itself. `onCheck` sees every check-alive answer.
   */
  async waitForRc(
    call: Call,
    jobId: string,
    timeoutMs: number,
    onCheck?: (c: CheckAlive) => void,
  ): Promise<CallResult> {
    const n =
      this.exitCodeTimeoutSeconds === undefined
        ? this.config.exitCodeTimeoutSeconds
        : this.exitCodeTimeoutSeconds;
    const checks: CheckAlive[] = [];
    const deadline = Date.now() + timeoutMs;
    let nextCheck = n == null ? Infinity : Date.now() + n * 1000;
    let deadSince: number | undefined;
    while (Date.now() < deadline) {
      if (existsSync(call.rc)) {
        return { rc: Number.parseInt(readFileSync(call.rc, 'utf8').trim(), 10), assumedDead: false, checks };
      }
      if (n != null && deadSince !== undefined && Date.now() - deadSince >= n * 1000) {
        writeFileSync(call.rc, '79\n');
        return { rc: 79, assumedDead: true, checks };
      }
      if (n != null && deadSince === undefined && Date.now() >= nextCheck) {
        const c = await this.checkAlive(call, jobId);
        checks.push(c);
        onCheck?.(c);
        if (c.code !== 0) deadSince = Date.now();
        nextCheck = Date.now() + n * 1000;
      }
      await new Promise(r => setTimeout(r, this.pollMs));
    }
    throw new Error(`no rc for ${call.jobName} (job ${jobId}) within ${timeoutMs} ms`);
  }

  /** Writes `script.<kind>` (`#!/bin/bash` + the template) and runs it with /bin/bash, as Cromwell. */
  private runTemplate(
    call: Call,
    kind: 'submit' | 'check' | 'kill',
    body: string,
  ): Promise<{ code: number | null; stdout: string; stderr: string }> {
    const file = join(call.execution, `script.${kind}`);
    writeFileSync(file, `#!/bin/bash\n${body}\n`);
    return new Promise((resolve, reject) => {
      const child = spawn('/bin/bash', [file], { env: this.env, cwd: call.execution });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', d => (stdout += d));
      child.stderr.on('data', d => (stderr += d));
      const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
      child.on('error', reject);
      child.on('close', code => {
        clearTimeout(timer);
        writeFileSync(join(call.execution, `stdout.${kind}`), stdout);
        writeFileSync(join(call.execution, `stderr.${kind}`), stderr);
        resolve({ code, stdout, stderr });
      });
    });
  }
}

/** Cromwell's execution/script (StandardAsyncExecutionActor): cd, TMPDIR, tee through FIFOs, rc.tmp → rc. */
function cromwellScript(call: Call): string {
  const ex = call.execution;
  const q = (s: string): string => `'${s.replace(/'/g, `'"'"'`)}'`;
  return `#!/bin/bash

cd ${q(ex)}
tmpDir=$(mkdir -p ${q(ex + '/tmp.cromwell')} && echo ${q(ex + '/tmp.cromwell')})
chmod 777 "$tmpDir"
export _JAVA_OPTIONS=-Djava.io.tmpdir="$tmpDir"
export TMPDIR="$tmpDir"

(
cd ${q(ex)}

)
outc0ffee="\${tmpDir}/out.$$" errc0ffee="\${tmpDir}/err.$$"
mkfifo "$outc0ffee" "$errc0ffee"
trap 'rm "$outc0ffee" "$errc0ffee"' EXIT
touch ${q(ex + '/stdout')} ${q(ex + '/stderr')}
tee ${q(ex + '/stdout')} < "$outc0ffee" &
tee ${q(ex + '/stderr')} < "$errc0ffee" >&2 &
(
cd ${q(ex)}
${call.spec.command}
)  > "$outc0ffee" 2> "$errc0ffee"
echo $? > ${q(ex + '/rc.tmp')}
(
# add a .file in every empty directory to facilitate directory delocalization on the cloud
cd ${q(ex)}
find . -type d -exec sh -c '[ -z "$(ls -A '"'"'{}'"'"')" ] && touch '"'"'{}'"'"'/.file' \\;
)
(
cd ${q(ex)}
sync
)
mv ${q(ex + '/rc.tmp')} ${q(ex + '/rc')}
`;
}
