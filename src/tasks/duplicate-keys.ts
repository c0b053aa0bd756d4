/**
 * The first key that appears twice in one object of a JSON text, with its path, or undefined. JSON.parse
 * silently keeps the last of two equal keys, so `{"command": "a", "command": "b"}` would run b: a task
 * file that says two things is refused instead. `text` must be valid JSON (checked by JSON.parse first);
 * the scan is iterative, so deep nesting cannot overflow the stack. Keys are compared decoded
 * ("a" equals "\u0061").
 */
export function duplicateKey(text: string): string | undefined {
  // One frame per open object (its keys so far and its path) or array (null keys).
  const stack: { keys: Set<string> | null; path: string; key?: string }[] = [];
  let expectKey = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"') {
      let j = i + 1;
      while (text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      const top = stack[stack.length - 1];
      if (expectKey && top?.keys) {
        const key = JSON.parse(text.slice(i, j + 1)) as string;
        if (top.keys.has(key)) return `${top.path}${top.path ? '.' : ''}${key}`;
        top.keys.add(key);
        top.key = key;
        expectKey = false;
      }
      i = j;
    } else if (c === '{' || c === '[') {
      const parent = stack[stack.length - 1];
      const at = parent?.keys ? (parent.key ?? '') : '';
      const path = parent ? `${parent.path}${parent.path && at ? '.' : ''}${at}` : '';
      stack.push({ keys: c === '{' ? new Set() : null, path });
      expectKey = c === '{';
    } else if (c === '}' || c === ']') {
      stack.pop();
      expectKey = false;
    } else if (c === ',') {
      expectKey = stack[stack.length - 1]?.keys != null;
    }
  }
  return undefined;
}
