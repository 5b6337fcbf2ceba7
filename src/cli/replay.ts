import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import type { Writable } from 'node:stream';
import { parseWorkerFor, ReplayInputError } from '../control/replay/replay-file.js';

interface ReplayFlags {
  input: string;
  output: string;
  strict?: boolean;
  threshold?: number;
  span?: number;
  minSamples?: number;
  approvalThreshold?: number;
  quiet?: boolean;
}

/** Output is written in chunks of this many characters: one write per detection would dominate when many are found. */
const WRITE_CHUNK = 1 << 16;

/**
 * `immune replay`: detections JSONL out, malformed lines reported on stderr with their line number, a summary at the end.
 * Parsing runs in a worker thread (replayFile) for files and stdin alike; imports stay off the typebox schema so the
 * command starts in a fraction of a second.
 */
export async function replayCommand(f: ReplayFlags): Promise<number> {
  // The worker (prestarted by bin/immune.js) boots while this thread loads the engine.
  const parsing = parseWorkerFor(f.input === '-' ? { fd: 0 } : { path: f.input });
  const { EventTimeReplayer, ReplayAbort } = await import('../control/replay/event-time-replayer.js');
  const output: Writable = f.output === '-' ? process.stdout : createWriteStream(f.output);
  const replayer = new EventTimeReplayer({
    strict: f.strict,
    engine: {
      ...(f.threshold !== undefined ? { thresholdSigma: f.threshold } : {}),
      ...(f.span !== undefined ? { ewmaSpan: f.span } : {}),
      ...(f.minSamples !== undefined ? { minSamples: f.minSamples } : {}),
      ...(f.approvalThreshold !== undefined ? { deviationRequiringApproval: f.approvalThreshold } : {}),
    },
    onSkip: (line, reason) => process.stderr.write(`line ${line}: ${reason} (skipped)\n`),
  });
  let buf = '';
  const close = async () => {
    if (buf) output.write(buf);
    buf = '';
    if (output !== process.stdout) {
      output.end();
      await once(output, 'finish');
    }
  };
  try {
    for await (const detections of parsing.replay(replayer)) {
      for (const d of detections) buf += JSON.stringify(d) + '\n';
      if (buf.length > WRITE_CHUNK) {
        const chunk = buf;
        buf = '';
        if (!output.write(chunk)) await once(output, 'drain');
      }
    }
  } catch (err) {
    if (err instanceof ReplayInputError) {
      process.stderr.write(`immune replay: cannot read ${f.input}: ${err.message}\n`);
      return 2;
    }
    if (err instanceof ReplayAbort) {
      await close();
      process.stderr.write(`immune replay: ${err.message} (--strict)\n`);
      return 1;
    }
    throw err;
  }
  await close();
  const s = replayer.finish();
  if (!f.quiet) {
    process.stderr.write(`replay: ${s.records} records read, ${s.skipped} skipped, ${s.agents} agents, ${s.detections} detections, ${s.fleet_incidents} fleet incidents${s.out_of_order ? `, ${s.out_of_order} out of order` : ''} in ${s.seconds} s (${s.vitals_per_second} vitals/s)\n`);
  }
  return 0;
}
