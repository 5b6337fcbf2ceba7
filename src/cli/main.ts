import { Command, InvalidArgumentError } from 'commander';
import { isImmuneError } from '../domain/errors.js';

// Each command's module is imported when it runs: loading the server stack up front costs every command
// (even `immune replay` and `--help`) about 1.5 s of start-up.
const runCommand: typeof import('./run.js').runCommand = async (...a) => (await import('./run.js')).runCommand(...a);
const replayCommand: typeof import('./replay.js').replayCommand = async (...a) => (await import('./replay.js')).replayCommand(...a);
const serverApiCommand: typeof import('./server-api.js').serverApiCommand = async (...a) => (await import('./server-api.js')).serverApiCommand(...a);

const int = (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('must be a whole number ≥ 0');
  return n;
};
const num = (v: string) => {
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new InvalidArgumentError('must be a number ≥ 0');
  return n;
};

const program = new Command()
  .name('immune')
  .description('Agent Immune: learns what normal looks like for each LLM agent, quarantines the sick ones, diagnoses and heals them.')
  .showHelpAfterError();

function productCommand(name: string, description: string, agents: number, duration: number) {
  return program
    .command(name)
    .description(description)
    .option('--agents <n>', 'simulated agents to run in-process', int, agents)
    .option('--duration <seconds>', 'stop after this long (0 = until stopped; env RUN_DURATION_SECONDS)', num)
    .option('--port <port>', 'HTTP port (env PORT, default 8090; 0 = any free port)', int)
    .option('--host <address>', 'bind address (env HOST, default 127.0.0.1)')
    .option('--no-chaos', 'do not inject infections into simulated agents (env CHAOS=false)')
    .option('--chaos-schedule <spec>', 'infections to inject: "seconds:infection[:agent][:magnitude],…" (default: the built-in demo cycle)')
    .option('--seed <n>', 'random seed of the simulated fleet (env SIM_SEED)', int)
    .option('--new-run', 'start a fresh run id instead of continuing the previous run')
    .option('--store <kind>', 'memory, sqlite, influx or api (env IMMUNE_STORE; default chosen from the environment)')
    .action(async (opts) => process.exit(await runCommand(name as 'run' | 'demo' | 'serve', opts, duration)));
}

productCommand('run', 'run the control plane with 15 simulated agents for 1200 s (the seed\'s main.py)', 15, 1200);
productCommand('demo', 'a shorter demo: 10 simulated agents for 600 s', 10, 600);
program
  .command('serve')
  .description('run the control plane for external agents only (no simulated agents) until stopped')
  .option('--port <port>', 'HTTP port (env PORT, default 8090; 0 = any free port)', int)
  .option('--host <address>', 'bind address (env HOST, default 127.0.0.1)')
  .option('--new-run', 'start a fresh run id instead of continuing the previous run')
  .option('--store <kind>', 'memory, sqlite, influx or api (env IMMUNE_STORE; default chosen from the environment)')
  .action(async (opts) => process.exit(await runCommand('serve', { ...opts, agents: 0, chaos: false }, 0)));

program
  .command('replay')
  .description('run the engine in event time over recorded vitals (JSONL) and print one JSON line per detection')
  .option('-i, --input <file>', 'vitals JSONL file, or - for stdin', '-')
  .option('-o, --output <file>', 'detections JSONL file, or - for stdout', '-')
  .option('--strict', 'stop at the first malformed line instead of skipping it')
  .option('--threshold <sigma>', 'per-sample deviation threshold (σ)', num)
  .option('--span <samples>', 'EWMA span', int)
  .option('--min-samples <n>', 'samples before an agent is judged', int)
  .option('--approval-threshold <sigma>', 'max_deviation at or above which an infection is severe', num)
  .option('--quiet', 'do not print the summary on stderr')
  .action(async (opts) => process.exit(await replayCommand(opts)));

program
  .command('server-api')
  .description('the REST persistence server of the client-deployed architecture (fronts SQLite or InfluxDB)')
  .option('--port <port>', 'port (env SERVER_API_PORT, default 8000)', int)
  .option('--host <address>', 'bind address (env HOST, default 127.0.0.1)')
  .option('--store <kind>', 'sqlite, influx or memory (default: influx if INFLUXDB_URL, else sqlite)')
  .action(async (opts) => process.exit(await serverApiCommand(opts)));

program.parseAsync(process.argv).catch((err: unknown) => {
  if (isImmuneError(err)) {
    process.stderr.write(`immune: ${err.message}\n`);
    process.exit(2);
  }
  process.stderr.write(`immune: ${(err as Error)?.stack ?? String(err)}\n`);
  process.exit(1);
});
