import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';

/** The TypeScript SDK as a package: its own tsconfig builds it, and what it ships needs nothing but Node. */
const SDK = fileURLToPath(new URL('../../sdk/typescript/', import.meta.url));
const TSC = fileURLToPath(new URL('../../node_modules/typescript/bin/tsc', import.meta.url));
const out = mkdtempSync(join(tmpdir(), 'immune-sdk-build-'));
afterAll(() => rmSync(out, { recursive: true, force: true }));

describe('@agent-immune/sdk package', () => {
  it('declares no runtime dependencies and supports Node 18+', () => {
    const pkg = JSON.parse(readFileSync(join(SDK, 'package.json'), 'utf8'));
    expect(pkg.name).toBe('@agent-immune/sdk');
    expect(pkg.dependencies ?? {}).toEqual({});
    expect(pkg.peerDependencies ?? {}).toEqual({});
    expect(pkg.engines.node).toBe('>=18');
  });

  it('builds with its own tsconfig into JS that imports only itself and node: built-ins, and loads in a bare Node', async () => {
    await promisify(execFile)(process.execPath, [TSC, '-p', join(SDK, 'tsconfig.json'), '--outDir', out]);
    const files = readdirSync(out).filter((f) => f.endsWith('.js'));
    expect(files).toContain('index.js');
    expect(readdirSync(out)).toContain('index.d.ts');
    const specifiers = files.flatMap((f) => [...readFileSync(join(out, f), 'utf8').matchAll(/^(?:import|export)[^'"]*from\s+['"]([^'"]+)['"]/gm)].map((m) => ({ f, s: m[1] })));
    expect(specifiers.length).toBeGreaterThan(10);
    for (const { f, s } of specifiers) expect(s, `${f} imports ${s}`).toMatch(/^(\.\/[\w-]+\.js|node:\w+)$/);
    // Loaded from a directory with no node_modules anywhere above it.
    const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', `const m = await import(${JSON.stringify(join(out, 'index.js'))}); console.log(Object.keys(m).sort().join(','))`], { cwd: out });
    expect(stdout.trim().split(',')).toEqual(expect.arrayContaining(['ImmuneReporter', 'QuarantinedError', 'instrumentOpenAI', 'verifySignature', 'systemPromptHash']));
  });
});
