import { connect } from 'node:net';
import { describe, expect, it } from 'vitest';
import { startProduct } from '../support/product.js';

describe('shutdown', () => {
  it('does not wait for a client that holds a connection open without sending a request', async () => {
    const p = await startProduct();
    const { hostname, port } = new URL(p.base);
    // Connected but silent, as load generators and some proxies leave them: close() alone waited for the 60 s header timeout.
    const socket = connect(Number(port), hostname);
    await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    const t0 = performance.now();
    await p.stop();
    const took = performance.now() - t0;
    await closed;
    expect(took).toBeLessThan(10_000);
    expect(took).toBeGreaterThanOrEqual(1_500); // it did give in-flight requests their drain time first
  }, 30_000);
});
