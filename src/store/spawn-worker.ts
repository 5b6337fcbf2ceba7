import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';

/**
 * Starts one of the store's worker threads (`name` is a module next to this
 * file) from the built .js; when running from the TypeScript sources (tests,
 * tsx) the worker first registers tsx so it can load the .ts entry (a worker
 * does not inherit the parent's loaders).
 */
export function spawnStoreWorker(name: 'sqlite-writer' | 'sqlite-checkpointer', workerData: unknown): Worker {
  if (!fileURLToPath(import.meta.url).endsWith('.ts')) return new Worker(new URL(`./${name}.js`, import.meta.url), { workerData });
  // The ESM entry of tsx's API (package exports "./esm/api" → import); require.resolve would pick the CJS one.
  const tsxApi = pathToFileURL(join(dirname(createRequire(import.meta.url).resolve('tsx/package.json')), 'dist/esm/api/index.mjs')).href;
  const entry = new URL(`./${name}.ts`, import.meta.url).href;
  const boot = `import(${JSON.stringify(tsxApi)}).then((m) => { m.register(); return import(${JSON.stringify(entry)}); });`;
  return new Worker(boot, { eval: true, workerData });
}
