/**
 * Text appended piece by piece as UTF-8 into shared memory: the detection checkpoint's JSON (11 MB
 * at 10,000 agents). Each piece is encoded straight into place, and the result goes to the SQLite
 * writer's thread without a copy (a Buffer over a SharedArrayBuffer is shared, not cloned, by
 * postMessage). Joining the pieces with Buffer.concat and cloning the result into the message cost
 * the event loop 30 ms each, in the middle of ingest.
 */
export class SharedBytes {
  private view: Buffer;
  private length = 0;

  /** `capacity`: bytes to start with (the previous checkpoint's size is a good guess); it grows as needed. */
  constructor(capacity: number) {
    this.view = Buffer.from(new SharedArrayBuffer(Math.max(1024, capacity)));
  }

  append(text: string): void {
    // UTF-8 takes at most 3 bytes per UTF-16 unit; the exact count is needed only close to the end.
    if (this.view.length - this.length < 3 * text.length) this.reserve(Buffer.byteLength(text));
    this.length += this.view.write(text, this.length);
  }

  /** What has been appended, as a Buffer over the shared memory (not a copy: append no more after handing it out). */
  bytes(): Buffer {
    return this.view.subarray(0, this.length);
  }

  private reserve(bytes: number): void {
    const need = this.length + bytes;
    if (need <= this.view.length) return;
    const view = Buffer.from(new SharedArrayBuffer(Math.max(need, 2 * this.view.length)));
    this.view.copy(view, 0, 0, this.length);
    this.view = view;
  }
}
