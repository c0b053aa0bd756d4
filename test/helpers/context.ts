import { loadConfig } from '../../src/config.js';
import { closeContext, openContext, type JtmContext } from '../../src/context.js';
import { silentLogger } from '../../src/logger.js';

/** An in-process context on the test's prefix, for reading records and driving the API directly. */
export async function openTestContext(env: Record<string, string>): Promise<JtmContext> {
  return openContext(loadConfig(env), silentLogger(), 'worker');
}

export { closeContext };
