// Preloaded (-r) into `immune replay` by bench/replay-speed.ts: at exit, prints the CPU seconds of the
// main (engine) thread, which load from other processes inflates far less than wall time. Linux only
// (reads /proc); elsewhere it prints nothing.
const { readFileSync } = require('node:fs');
process.on('exit', () => {
  try {
    const stat = readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // utime and stime, in clock ticks (100 per second on Linux).
    process.stderr.write(`engine thread: ${((Number(f[11]) + Number(f[12])) / 100).toFixed(2)} s CPU\n`);
  } catch {
    // not Linux
  }
});
