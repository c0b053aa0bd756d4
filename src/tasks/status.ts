// The codes live below every domain folder (src/task-status.ts) so that src/redis/scripts.ts can use them;
// domain code keeps importing them from here.
export * from '../task-status.js';
