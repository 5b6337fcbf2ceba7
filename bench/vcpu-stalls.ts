/**
 * How often this machine's CPUs stop running a thread that wants to run: one spinning process per CPU
 * (`taskset`) reads the clock in a loop and counts the gaps between two readings. On an otherwise idle
 * machine a gap of over 0.5 ms is the hypervisor running something else on that vCPU (or the guest
 * kernel, far more rarely): every thread of a server on that vCPU, and every request in flight, waits
 * as long. It is the floor under any latency percentile measured here, so the HTTP benchmark reports
 * it next to its p99 figures.
 *
 *   npx tsx bench/vcpu-stalls.ts [seconds]
 */
import { spawn } from 'node:child_process';
import { availableParallelism } from 'node:os';

export interface VcpuStalls {
  cpu: number;
  seconds: number;
  /** Share of the wall time lost in gaps over 50 µs. */
  lost_pct: number;
  gaps_over_0_5_ms: number;
  gaps_over_2_ms: number;
  max_gap_ms: number;
}

/**
 * The spinner, in Python (python3's standard library): reference counting frees every float at once, so
 * it makes no pauses of its own. A Node spinner counted two to three times as many gaps over 2 ms as this
 * one or the same loop in C, run side by side; Python and C agreed.
 */
const SPIN = `
import json, sys, time
seconds = float(sys.argv[1]); clock = time.perf_counter
end = clock() + seconds; prev = clock(); lost = 0.0; longest = 0.0; half = 0; two = 0
while True:
    t = clock(); gap = t - prev; prev = t
    if t > end: break
    if gap > 5e-5:
        lost += gap; longest = max(longest, gap)
        if gap > 5e-4: half += 1
        if gap > 2e-3: two += 1
print(json.dumps({"lost": lost * 1000, "max": longest * 1000, "half": half, "two": two}))
`;

function spinOn(cpu: number, seconds: number): Promise<VcpuStalls> {
  const child = spawn('taskset', ['-c', String(cpu), 'python3', '-c', SPIN, String(seconds)], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    // 'close', not 'exit': the output is complete only once stdout has closed.
    child.on('close', (code) => {
      let r: { lost: number; max: number; half: number; two: number };
      try {
        if (code !== 0) throw new Error(`exited ${code}`);
        r = JSON.parse(out) as typeof r;
      } catch (err) {
        return reject(new Error(`vCPU probe on cpu ${cpu} failed (${(err as Error).message}): are taskset (util-linux) and python3 installed?`));
      }
      const round = (x: number) => Math.round(x * 100) / 100;
      resolve({ cpu, seconds, lost_pct: round((r.lost / (seconds * 1000)) * 100), gaps_over_0_5_ms: r.half, gaps_over_2_ms: r.two, max_gap_ms: round(r.max) });
    });
  });
}

/** Every CPU at once, for `seconds`: while nothing else runs, what is measured is the machine itself. */
export function measureVcpuStalls(seconds: number): Promise<VcpuStalls[]> {
  return Promise.all(Array.from({ length: availableParallelism() }, (_, cpu) => spinOn(cpu, seconds)));
}

if (import.meta.url === `file://${process.argv[1]}`) {
  console.log(JSON.stringify(await measureVcpuStalls(Number(process.argv[2] ?? 10)), null, 2));
}
