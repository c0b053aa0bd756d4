// Types of run-process.mjs for the TypeScript tests that import it.
export interface ProcessResult {
  code: number | null;
  stdout: string;
  stderr: string;
}
export function runProcess(
  command: string,
  args: readonly string[],
  opts?: { env?: Record<string, string>; cwd?: string; timeoutMs?: number; input?: string },
): Promise<ProcessResult>;
