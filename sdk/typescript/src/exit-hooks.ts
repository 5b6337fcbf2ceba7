/** A reporter that wants its buffer sent before the process ends. */
export interface ExitFlushable {
  /** One last bounded attempt to send what is buffered; resolves when done or given up. */
  flushForExit(): Promise<void>;
  /** True while records wait and the last attempt has not been made yet. */
  needsExitFlush(): boolean;
}

const reporters = new Set<ExitFlushable>();
let installed = false;

/*
 * One set of process listeners for every reporter (not one per reporter,
 * which would trip Node's MaxListeners warning in processes with many agents).
 *
 * beforeExit: Node emits it when the event loop empties. The flush's requests
 * keep the loop alive until they finish; then beforeExit fires again and, as
 * every reporter has had its last attempt, the process exits. Timers are
 * unref'd, so a reporter never keeps an otherwise finished process alive.
 *
 * SIGTERM: adding a listener disables Node's default "exit on SIGTERM". When
 * ours is the only listener we flush (bounded) and then re-raise the signal
 * with our listener removed, so the process ends exactly as it would have.
 * When the application listens too, it owns shutdown: we start the flush and
 * leave the rest to it (it should await reporter.close()).
 */
function onBeforeExit(): void {
  for (const r of reporters) if (r.needsExitFlush()) void r.flushForExit();
}

function onSigterm(): void {
  const others = process.listenerCount('SIGTERM') > 1;
  const all = Promise.all([...reporters].map((r) => r.flushForExit()));
  if (others) return;
  void all.finally(() => {
    uninstall();
    process.kill(process.pid, 'SIGTERM');
  });
}

function install(): void {
  if (installed) return;
  installed = true;
  process.on('beforeExit', onBeforeExit);
  process.on('SIGTERM', onSigterm);
}

function uninstall(): void {
  if (!installed) return;
  installed = false;
  process.off('beforeExit', onBeforeExit);
  process.off('SIGTERM', onSigterm);
}

export function watchExit(r: ExitFlushable): void {
  reporters.add(r);
  install();
}

export function unwatchExit(r: ExitFlushable): void {
  reporters.delete(r);
  if (reporters.size === 0) uninstall();
}
