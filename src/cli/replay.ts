import { createReadStream, createWriteStream } from 'node:fs';
import { once } from 'node:events';
import type { Writable } from 'node:stream';
import { linesOf, ReplayAbort, Replayer } from '../control/replay.js';

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

/** `immune replay`: detections JSONL out, malformed lines reported on stderr with their line number, a summary at the end. */
export async function replayCommand(f: ReplayFlags): Promise<number> {
  const input = f.input === '-' ? process.stdin : createReadStream(f.input);
  const output: Writable = f.output === '-' ? process.stdout : createWriteStream(f.output);
  const inputError = new Promise<Error>((resolve) => input.once('error', resolve));
  const replayer = new Replayer({
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
  const write = async (s: string) => {
    buf += s;
    if (buf.length > 1 << 16) {
      const chunk = buf;
      buf = '';
      if (!output.write(chunk)) await once(output, 'drain');
    }
  };
  try {
    const reading = (async () => {
      for await (const line of linesOf(input)) {
        for (const d of replayer.line(line)) await write(JSON.stringify(d) + '\n');
      }
    })();
    const failed = await Promise.race([reading.then(() => null), inputError]);
    if (failed) {
      process.stderr.write(`immune replay: cannot read ${f.input}: ${failed.message}\n`);
      return 2;
    }
  } catch (err) {
    if (err instanceof ReplayAbort) {
      process.stderr.write(`immune replay: ${err.message} (--strict)\n`);
      if (buf) output.write(buf);
      return 1;
    }
    throw err;
  }
  if (buf) output.write(buf);
  if (output !== process.stdout) {
    output.end();
    await once(output, 'finish');
  }
  const s = replayer.finish();
  if (!f.quiet) {
    process.stderr.write(`replay: ${s.records} records read, ${s.skipped} skipped, ${s.agents} agents, ${s.detections} detections, ${s.fleet_incidents} fleet incidents${s.out_of_order ? `, ${s.out_of_order} out of order` : ''} in ${s.seconds} s (${s.vitals_per_second} vitals/s)\n`);
  }
  return 0;
}
