import { Worker } from 'node:worker_threads';

/**
 * Starts the worker thread whose module is `name` next to the caller (`from`: the caller's
 * import.meta.url): the built .js, or, when running from the TypeScript sources (tests, benchmarks
 * under tsx), the .ts after registering tsx in the thread, since a worker inherits neither the
 * parent's loaders nor its --import.
 */
export function spawnWorker(from: string, name: string, workerData: unknown): Worker {
  if (!from.endsWith('.ts')) return new Worker(new URL(`./${name}.js`, from), { workerData });
  const tsx = import.meta.resolve('tsx/esm/api');
  const entry = new URL(`./${name}.ts`, from).href;
  return new Worker(`import { register } from ${JSON.stringify(tsx)}; register(); await import(${JSON.stringify(entry)});`, { eval: true, workerData });
}
