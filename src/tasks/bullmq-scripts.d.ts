// BullMQ's Lua scripts are not part of its typed API; this one is read for its text (src/tasks/submit-jobs.ts).
// The CommonJS build, as Node loads `bullmq` itself (its package main); the file name carries the key count,
// so a BullMQ that changes the script's keys fails the build here rather than at run time.
declare module 'bullmq/dist/cjs/scripts/addStandardJob-9.js' {
  export const addStandardJob: { name: string; content: string; keys: number };
}
