import type { MessagePort } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { SharedBytes } from '../../src/state/shared-bytes.js';

/**
 * Node's MessagePort is an EventTarget whose `onmessage` handler gets a MessageEvent (setting it starts
 * the port), but @types/node declares only its EventEmitter side: this adds the handler to the type.
 */
type WithOnMessage<T> = MessagePort & { onmessage: ((m: { data: T }) => void) | null };

describe('SharedBytes', () => {
  it('is the UTF-8 of the pieces in order, across growth and multi-byte characters', () => {
    const out = new SharedBytes(16);
    const pieces = ['{"agents":[', 'ä€😀'.repeat(40), ',', 'x'.repeat(5000), ']}'];
    for (const p of pieces) out.append(p);
    const bytes = out.bytes();
    expect(bytes.toString('utf8')).toBe(pieces.join(''));
    expect(bytes.length).toBe(Buffer.byteLength(pieces.join('')));
  });

  it('lives in shared memory, so a worker thread gets it without a copy', () => {
    const out = new SharedBytes(1 << 20);
    out.append('{"seq":1}');
    expect(out.bytes().buffer).toBeInstanceOf(SharedArrayBuffer);
    const { port1, port2 } = new MessageChannel();
    return new Promise<void>((done) => {
      (port2 as WithOnMessage<Uint8Array>).onmessage = (m) => {
        // The same memory on the other side: a write through one view shows in the other.
        out.bytes()[0] = '['.charCodeAt(0);
        expect(Buffer.from(m.data).toString()).toBe('["seq":1}');
        port1.close();
        done();
      };
      port1.postMessage(out.bytes());
    });
  });
});
