import { userInfo } from 'node:os';

/** The name of the user this process runs as; undefined where the system has none for its uid (a container). */
export function processUserName(): string | undefined {
  try {
    return userInfo().username;
  } catch {
    return undefined;
  }
}
