#!/usr/bin/env node
// Import-cycle check run by `npm run lint` (BullMQ runs `madge --circular` in its pretest). Two levels:
// - files: no module may import itself through others (madge's circular list);
// - folders: src/<folder> and the top-level src/*.ts files form a layered graph (commands → src/cli →
//   domain → infrastructure); a cycle between folders means two concepts that cannot be understood, tested
//   or moved apart, even when no single file cycle exists.
// Exits 1 and prints each cycle (with the file imports that make it) when one is found.
import madge from 'madge';

const res = await madge(['src', 'commands'], {
  fileExtensions: ['ts'],
  tsConfig: 'tsconfig.json',
  detectiveOptions: { ts: { skipTypeImports: false } },
});
let failed = false;

const fileCycles = res.circular();
for (const c of fileCycles) console.error(`file import cycle: ${[...c, c[0]].join(' -> ')}`);
if (fileCycles.length > 0) failed = true;

// madge names files relative to the common base of the inputs: src/… and commands/….
const unit = file => {
  const parts = file.split('/');
  if (parts[0] !== 'src') return parts[0];
  return parts.length > 2 ? parts[1] : parts[1].replace(/\.ts$/, '');
};
/** @type {Map<string, Map<string, string[]>>} folder → folder → the file imports behind the edge */
const edges = new Map();
for (const [from, deps] of Object.entries(res.obj())) {
  for (const to of deps) {
    const a = unit(from);
    const b = unit(to);
    if (a === b) continue;
    if (!edges.has(a)) edges.set(a, new Map());
    const m = edges.get(a);
    m.set(b, [...(m.get(b) ?? []), `${from} -> ${to}`]);
  }
}

// Tarjan's strongly connected components: every component of more than one folder is a cycle.
let index = 0;
const idx = new Map();
const low = new Map();
const stack = [];
const onStack = new Set();
const components = [];
function visit(v) {
  idx.set(v, index);
  low.set(v, index++);
  stack.push(v);
  onStack.add(v);
  for (const w of edges.get(v)?.keys() ?? []) {
    if (!idx.has(w)) {
      visit(w);
      low.set(v, Math.min(low.get(v), low.get(w)));
    } else if (onStack.has(w)) low.set(v, Math.min(low.get(v), idx.get(w)));
  }
  if (low.get(v) === idx.get(v)) {
    const comp = [];
    let w;
    do {
      w = stack.pop();
      onStack.delete(w);
      comp.push(w);
    } while (w !== v);
    if (comp.length > 1) components.push(comp);
  }
}
for (const v of edges.keys()) if (!idx.has(v)) visit(v);

for (const comp of components) {
  failed = true;
  const members = new Set(comp);
  console.error(`folder import cycle among: ${comp.sort().join(', ')}`);
  for (const a of comp) {
    for (const [b, files] of edges.get(a) ?? []) {
      if (members.has(b)) console.error(`  ${a} -> ${b}: ${files.join('; ')}`);
    }
  }
}
if (failed) process.exit(1);
console.log(`no import cycles (${Object.keys(res.obj()).length} files)`);
