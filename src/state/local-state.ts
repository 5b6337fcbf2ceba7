import { chmodSync, closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, statSync, writeSync } from 'node:fs';
import { chmod, mkdir, open, rename } from 'node:fs/promises';
import { join } from 'node:path';
import type { EngineSnapshot } from '../engine/engine.js';
import type { Logger } from '../log.js';

/**
 * Local state for restart resilience (the seed's CacheManager), under
 * IMMUNE_CACHE_DIR: state.json (run id, generated keys, last applied event
 * seq, workflow summary) and snapshot.json (the engine's detection state,
 * large, written separately). Each file carries a schema version; a file
 * from an older or newer layout, or one that does not parse, is moved aside
 * with a warning and the process starts without it. Writes are atomic
 * (temp file, fsync, rename) and readable by the owner only (0600).
 */
export const LOCAL_STATE_VERSION = 1;

export interface GeneratedKeys {
  ingest_api_key?: string;
  operator_token?: string;
  webhook_secret?: string;
}

export interface WorkflowSummary {
  quarantined: string[];
  pending: string[];
  rejected: string[];
}

export interface LocalStateData {
  run_id: string | null;
  keys: GeneratedKeys;
  /** Highest event seq already in the store when the state was saved. */
  last_seq: number;
  /** Who was contained at the last save (for operators and a store-less fallback); the event log stays the truth. */
  workflow: WorkflowSummary;
  snapshot: EngineSnapshot | null;
}

export interface LoadResult {
  state: LocalStateData;
  /** Human-readable problems found (corrupt, other version, loose permissions); log them as warnings. */
  warnings: string[];
}

const STATE_FILE = 'state.json';
const SNAPSHOT_FILE = 'snapshot.json';

export function emptyLocalState(): LocalStateData {
  return { run_id: null, keys: {}, last_seq: 0, workflow: { quarantined: [], pending: [], rejected: [] }, snapshot: null };
}

/** Writes a file so that a crash leaves either the old or the new content, never a mix; owner-only. */
export function writeFileAtomic(path: string, content: string): void {
  const tmp = `${path}.${process.pid}.tmp`;
  const fd = openSync(tmp, 'w', 0o600);
  try {
    writeSync(fd, content);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  chmodSync(tmp, 0o600); // the umask may have widened nothing, but an existing tmp could have other bits
  renameSync(tmp, path);
  try {
    // Persist the rename itself (directory entry).
    const dfd = openSync(join(path, '..'), 'r');
    fsyncSync(dfd);
    closeSync(dfd);
  } catch {
    // Some filesystems do not allow fsync on a directory; the rename is still atomic.
  }
}

/** writeFileAtomic without blocking the event loop on the write and the fsync (large snapshots); the file is the parts in order. */
export async function writeFileAtomicAsync(path: string, parts: readonly Buffer[]): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`;
  const fh = await open(tmp, 'w', 0o600);
  try {
    await fh.writev(parts as Buffer[]);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await chmod(tmp, 0o600);
  await rename(tmp, path);
  try {
    const dir = await open(join(path, '..'), 'r');
    await dir.sync().finally(() => dir.close());
  } catch {
    // As in writeFileAtomic: not every filesystem syncs a directory.
  }
}

export class LocalState {
  private state: LocalStateData = emptyLocalState();

  constructor(
    readonly dir: string,
    private readonly log?: Logger,
    private readonly clock: () => number = Date.now,
  ) {}

  get current(): Readonly<LocalStateData> {
    return this.state;
  }

  /** Reads both files; never throws for damaged content (it is moved aside and reported in warnings). */
  load(): LoadResult {
    const warnings: string[] = [];
    this.state = emptyLocalState();
    const main = this.readVersioned(STATE_FILE, warnings);
    if (main) {
      const d = main as Partial<LocalStateData>;
      this.state.run_id = typeof d.run_id === 'string' && d.run_id !== '' ? d.run_id : null;
      this.state.keys = typeof d.keys === 'object' && d.keys !== null ? { ...d.keys } : {};
      this.state.last_seq = typeof d.last_seq === 'number' && d.last_seq >= 0 ? d.last_seq : 0;
      const w = d.workflow as Partial<WorkflowSummary> | undefined;
      const ids = (x: unknown) => (Array.isArray(x) ? x.filter((s): s is string => typeof s === 'string') : []);
      this.state.workflow = { quarantined: ids(w?.quarantined), pending: ids(w?.pending), rejected: ids(w?.rejected) };
    }
    const snap = this.readVersioned(SNAPSHOT_FILE, warnings);
    if (snap) {
      const s = (snap as { snapshot?: EngineSnapshot }).snapshot;
      if (s && typeof s.seq === 'number' && Array.isArray(s.agents)) this.state.snapshot = s;
      else warnings.push(this.moveAside(SNAPSHOT_FILE, 'has no valid snapshot'));
    }
    for (const w of warnings) this.log?.warn({ dir: this.dir }, w);
    return { state: this.state, warnings };
  }

  /** Merges `partial` into the state and writes the file(s) it touches. */
  save(partial: Partial<LocalStateData>): void {
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    const { snapshot, ...rest } = partial;
    if (Object.keys(rest).length > 0) writeFileAtomic(join(this.dir, STATE_FILE), this.merge(rest));
    if (snapshot !== undefined) {
      this.state.snapshot = snapshot;
      writeFileAtomic(join(this.dir, SNAPSHOT_FILE), JSON.stringify({ schema_version: LOCAL_STATE_VERSION, saved_at: this.clock() / 1000, snapshot }));
    }
  }

  /**
   * `save` of the small state (no snapshot) without blocking the event loop: its two fsyncs took
   * 10–35 ms on the main thread at the end of every detection checkpoint, in the middle of ingest.
   * Only the checkpoint calls it, one at a time, so no other save can be overtaken by its rename.
   */
  async saveInBackground(partial: Omit<Partial<LocalStateData>, 'snapshot'>): Promise<void> {
    const content = this.merge(partial);
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    await writeFileAtomicAsync(join(this.dir, STATE_FILE), [Buffer.from(content)]);
  }

  /** Folds `rest` into the state; returns the state file's new content. */
  private merge(rest: Omit<Partial<LocalStateData>, 'snapshot'>): string {
    this.state = { ...this.state, ...rest, keys: { ...this.state.keys, ...(rest.keys ?? {}) } };
    const { snapshot: _omit, ...small } = this.state;
    return JSON.stringify({ schema_version: LOCAL_STATE_VERSION, saved_at: this.clock() / 1000, ...small }, null, 1);
  }

  /**
   * Writes the snapshot file without blocking the event loop; `encoded` (the
   * snapshot's JSON as UTF-8 bytes) is shared with the store's copy, so a
   * fleet's snapshot is encoded once per checkpoint and never held as one
   * string (joining and encoding 11 MB of text blocked the loop ~80 ms).
   */
  async saveSnapshot(snapshot: EngineSnapshot, encoded: Buffer = Buffer.from(JSON.stringify(snapshot))): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    // Not kept in memory: it is read back only at start, and a fleet's snapshot is tens of MB of heap.
    this.state.snapshot = null;
    const head = JSON.stringify({ schema_version: LOCAL_STATE_VERSION, saved_at: this.clock() / 1000 });
    await writeFileAtomicAsync(join(this.dir, SNAPSHOT_FILE), [Buffer.from(`${head.slice(0, -1)},"snapshot":`), encoded, Buffer.from('}')]);
  }

  private readVersioned(name: string, warnings: string[]): Record<string, unknown> | null {
    const path = join(this.dir, name);
    if (!existsSync(path)) return null;
    const mode = statSync(path).mode & 0o777;
    if (mode & 0o077) {
      chmodSync(path, 0o600);
      warnings.push(`${path} was readable by others (mode ${mode.toString(8)}); tightened to 600`);
    }
    let data: unknown;
    try {
      data = JSON.parse(readFileSync(path, 'utf8'));
    } catch (err) {
      warnings.push(this.moveAside(name, `is corrupt (${(err as Error).message})`));
      return null;
    }
    if (typeof data !== 'object' || data === null || Array.isArray(data)) {
      warnings.push(this.moveAside(name, 'is not a JSON object'));
      return null;
    }
    const version = (data as { schema_version?: unknown }).schema_version;
    if (version !== LOCAL_STATE_VERSION) {
      const which = typeof version === 'number' && version > LOCAL_STATE_VERSION ? 'newer' : 'older';
      warnings.push(this.moveAside(name, `has schema version ${String(version)} (${which} than this build's ${LOCAL_STATE_VERSION})`));
      return null;
    }
    return data as Record<string, unknown>;
  }

  /** Keeps the damaged file for forensics instead of deleting it; returns the warning text. */
  private moveAside(name: string, why: string): string {
    const path = join(this.dir, name);
    const aside = `${path}.discarded-${this.clock()}`;
    try {
      renameSync(path, aside);
    } catch {
      return `${path} ${why}; it could not be moved aside and is ignored`;
    }
    const lost = name === STATE_FILE ? ' (run id and generated keys start fresh)' : ' (baselines come from the store or are relearned)';
    return `${path} ${why}; moved to ${aside} and started without it${lost}`;
  }
}
