#!/usr/bin/env node
// Thin launcher: the CLI is compiled to dist/ by `npm ci` (the prepare script).
// `immune replay` starts its parse worker thread before the CLI loads: the thread's start-up (~0.1 s)
// then overlaps loading the CLI and the engine instead of following it, and it starts reading the input
// file when the command line names one plainly. The engine's modules start loading now too (the command
// imports them again once its flags are parsed; an error shows there).
if (process.argv[2] === 'replay') {
  const { inputGuess, prestartParseWorker } = await import('../dist/control/replay/replay-file.js');
  prestartParseWorker(inputGuess(process.argv.slice(3)) ?? undefined);
  import('../dist/control/replay/event-time-replayer.js').catch(() => {});
}
await import('../dist/cli/main.js');
