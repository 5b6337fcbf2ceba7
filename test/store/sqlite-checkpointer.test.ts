import Database from 'better-sqlite3';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { SqliteStore } from '../../src/store/sqlite.js';
import { capturingLogger } from '../support/log.js';
import { until } from '../support/scripted-http.js';
import { vitals } from './contract.js';

const dir = mkdtempSync(join(tmpdir(), 'immune-ckpt-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('sqlite store: the WAL is checkpointed off the writer', () => {
  it('copies committed vitals into the database file long before the writer’s own 64 MB threshold; close() stops it without a warning', async () => {
    const path = join(dir, 'immune.sqlite');
    const { log, lines } = capturingLogger('warn');
    const s = new SqliteStore({ path, log });
    await s.open();
    try {
      const before = statSync(path).size;
      // ~12 MB of WAL in small commits, as single-record ingest writes them: far below the writer's automatic checkpoint.
      for (let b = 0; b < 200; b++) {
        await s.appendVitals('r', Array.from({ length: 400 }, (_, i) => vitals(`a${i % 50}`, 1000 + b * 400 + i)));
      }
      const deadline = Date.now() + 5000;
      while (statSync(path).size < before + 8_000_000 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      expect(statSync(path).size - before).toBeGreaterThan(8_000_000);
      expect(await s.vitalsCount('r')).toBe(80_000);
    } finally {
      await s.close();
    }
    expect(lines).toEqual([]);
  });

  it('a write that races close() does not start a checkpointer that outlives the store', async () => {
    const path = join(dir, 'race.sqlite');
    const s = new SqliteStore({ path });
    await s.open();
    await s.appendVitals('r', [vitals('a0', 1000)]); // starts the checkpointer
    const closing = s.close(); // stops the checkpointer first, then the writer
    const late = s.appendVitals('r', [vitals('a0', 1001)]).then(
      () => 'stored',
      () => 'refused',
    );
    await closing;
    expect(['stored', 'refused']).toContain(await late);
    // A checkpointer started by the late write would hold a connection open, and the WAL of the last
    // connection to close is removed: with none left over, it is gone.
    await new Promise((r) => setTimeout(r, 300));
    expect(existsSync(`${path}-wal`)).toBe(false);
  });
});

/** This process's RLIMIT_FSIZE soft limit: a write past `bytes` into any file fails with EFBIG, even as root (Node ignores SIGXFSZ). */
function limitFileSize(bytes: number | 'unlimited'): void {
  execFileSync('prlimit', ['--pid', String(process.pid), `--fsize=${bytes}:`]);
}

describe('sqlite store: a failing WAL checkpoint', () => {
  it('is reported to the store’s logger once, not on every attempt; writes go on, and the checkpointer resumes', async () => {
    const path = join(dir, 'full.sqlite');
    const first = new SqliteStore({ path });
    await first.open();
    for (let b = 0; b < 20; b++) await first.appendVitals('r', Array.from({ length: 400 }, (_, i) => vitals(`a${i % 50}`, 1000 + b * 400 + i)));
    await first.close(); // the last connection copies the WAL into the database file and deletes it
    const size = statSync(path).size;

    const { log, lines } = capturingLogger('warn');
    const s = new SqliteStore({ path, log });
    await s.open();
    // Frames in the WAL and frames already copied into the database file, read without copying anything.
    const probe = new Database(path);
    const wal = () => (probe.pragma('wal_checkpoint(NOOP)') as Array<{ log: number; checkpointed: number }>)[0]!;
    let ts = 100_000;
    const append = () => s.appendVitals('r', [vitals('a0', ts++)]);
    // As on a full disk, nothing may be written past half the database file: the WAL, started over at its beginning,
    // stays below that; copying the new rows into their pages at the end of the file fails.
    const diskFull = async (during: () => Promise<void>) => {
      limitFileSize(Math.floor(size / 2));
      try {
        await during();
      } finally {
        limitFileSize('unlimited');
      }
    };
    try {
      await diskFull(async () => {
        await append(); // starts the checkpointer
        await until(() => lines.length > 0, 'the warning');
        // Four more attempts fail while writes go on.
        for (let k = 0; k < 4; k++) {
          await new Promise((r) => setTimeout(r, 250));
          await append();
        }
        expect(wal().checkpointed).toBeLessThan(wal().log);
      });
      expect(lines).toEqual([expect.objectContaining({ level: 40, msg: expect.stringMatching(/^sqlite WAL checkpoint failed; .*No data is lost/), path, code: 'SQLITE_IOERR_WRITE', reason: 'disk I/O error' })]);
      expect(await s.vitalsCount('r')).toBe(8005);

      // Room again: the next checkpoint copies the whole WAL; a later failure is news again.
      await until(() => wal().checkpointed === wal().log, 'the WAL copied into the database file');
      await diskFull(async () => {
        await append();
        await until(() => lines.length > 1, 'a second warning');
      });
      expect(lines).toHaveLength(2);
      expect(await s.vitalsCount('r')).toBe(8006);
    } finally {
      probe.close();
      await s.close();
    }
  });
});

describe('sqlite store: a checkpointer thread that cannot start', () => {
  it('is started again after 30 s, then 60 s, 120 s (30 s again after a thread that lived 10 min), not with every batch; one warning per stop, with its SQLite code; none after close()', async () => {
    // The configured path is a symbolic link. SQLite resolves it when a connection opens, so the store's own connections
    // keep their file when the link is pointed elsewhere (into a volume no longer mounted); a new connection cannot open it.
    const path = join(dir, 'link.sqlite');
    symlinkSync(join(dir, 'mounted.sqlite'), path);
    const { log, lines } = capturingLogger('warn');
    const s = new SqliteStore({ path, log });
    await s.open();
    await s.registerRun('r'); // the writer's connection is open
    rmSync(path);
    symlinkSync(join(dir, 'unmounted', 'immune.sqlite'), path);
    vi.useFakeTimers({ toFake: ['performance'] }); // the back-off's clock, moved by hand; timers stay real
    let ts = 1000;
    /** Batches for `ms`, as ingest writes them; any checkpointer started meanwhile has time to fail and say so. */
    const ingest = async (ms: number) => {
      const end = Date.now() + ms;
      while (Date.now() < end) {
        await s.appendVitals('r', [vitals('a0', ts++)]);
        await new Promise((r) => setTimeout(r, 5));
      }
    };
    /** Not restarted (no new warning) until `seconds` after the last stop; then restarted, and stopped again. */
    const restartedAfter = async (seconds: number) => {
      const n = lines.length;
      vi.advanceTimersByTime(seconds * 1000 - 1000);
      await ingest(1000);
      expect(lines).toHaveLength(n);
      vi.advanceTimersByTime(1000);
      await ingest(1000);
      await until(() => lines.length > n, 'the next stop');
    };
    const stopped = (restartInS: number) =>
      expect.objectContaining({ level: 40, msg: expect.stringMatching(/^sqlite WAL checkpointer stopped; .*No data is lost/), path, code: 'SQLITE_CANTOPEN', reason: 'unable to open database file', restart_in_s: restartInS });
    try {
      await ingest(1000);
      await until(() => lines.length > 0, 'the first stop');
      // Readiness still holds (nothing is lost), and says what is wrong.
      expect(await s.health()).toMatchObject({ ok: true, detail: expect.stringContaining('WAL checkpointer stopped (SQLITE_CANTOPEN: unable to open database file), restarted with the vitals written 30 s later') });
      await ingest(1000);
      expect(lines).toEqual([stopped(30)]);
      await restartedAfter(30);
      expect(lines).toEqual([stopped(30), stopped(60)]);
      await restartedAfter(60);
      expect(lines).toEqual([stopped(30), stopped(60), stopped(120)]);
      // A thread that ran as long as the cap (10 min) was no crash loop: the wait starts over at 30 s.
      vi.advanceTimersByTime(120_000);
      const batch = s.appendVitals('r', [vitals('a0', ts++)]);
      vi.advanceTimersByTime(600_000); // before the thread it started has stopped
      await batch;
      await until(() => lines.length > 3, 'the fourth stop');
      expect(lines).toEqual([stopped(30), stopped(60), stopped(120), stopped(30)]);
      expect(await s.vitalsCount('r')).toBe(ts - 1000); // the writer went on throughout
      vi.advanceTimersByTime(30_000); // a restart is due, but the store is closed
      await s.close();
      await expect(s.appendVitals('r', [vitals('a0', ts)])).rejects.toThrow(/closed/);
      await new Promise((r) => setTimeout(r, 1000));
      expect(lines).toHaveLength(4);
    } finally {
      vi.useRealTimers();
      await s.close();
    }
  });
});
