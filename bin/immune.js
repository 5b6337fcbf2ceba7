#!/usr/bin/env node
// Thin launcher: the CLI is compiled to dist/ by `npm ci` (the prepare script).
// `immune replay` starts its parse worker thread before the CLI loads: the thread's start-up (~0.1 s)
// then overlaps loading the CLI and the engine instead of following it.
if (process.argv[2] === 'replay') (await import('../dist/control/replay/replay-file.js')).prestartParseWorker();
await import('../dist/cli/main.js');
