import { execFile } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { settingNames } from '../../src/config.js';
import { composePort, readRepo, readYaml, repo } from './files.js';

const run = promisify(execFile);
const script = fileURLToPath(repo('start.sh'));
const text = readRepo('start.sh');
const exported = [...text.matchAll(/^export ([A-Z0-9_]+)="\$\{([A-Z0-9_]+):-([^}]*)\}"$/gm)].map((m) => ({ name: m[1], ref: m[2], value: m[3] }));

// Real bash runs the script; `node` and `npm` on its PATH are stubs that print what they were given.
const stubs = mkdtempSync(join(tmpdir(), 'immune-start-sh-'));
writeFileSync(join(stubs, 'node'), '#!/bin/sh\necho "ARGS $*"\nenv | grep -E "^(INFLUXDB|OTEL)_" | sort\n');
writeFileSync(join(stubs, 'npm'), '#!/bin/sh\necho "NPM $*"\n');
chmodSync(join(stubs, 'node'), 0o755);
chmodSync(join(stubs, 'npm'), 0o755);
afterAll(() => rmSync(stubs, { recursive: true, force: true }));

async function launch(args: string[], env: Record<string, string> = {}): Promise<{ args: string; env: Record<string, string> }> {
  const { stdout } = await run('bash', [script, ...args], { env: { PATH: `${stubs}:/usr/bin:/bin`, ...env } });
  const lines = stdout.trim().split('\n');
  const argLine = lines.find((l) => l.startsWith('ARGS ')) ?? '';
  return { args: argLine.slice(5), env: Object.fromEntries(lines.filter((l) => /^[A-Z_]+=/.test(l)).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)])) };
}

describe('start.sh', () => {
  it('is an executable bash script with strict mode that parses (bash -n)', async () => {
    expect(statSync(script).mode & 0o111).not.toBe(0);
    expect(text.startsWith('#!/usr/bin/env bash\n')).toBe(true);
    expect(text).toMatch(/^set -euo pipefail$/m);
    await expect(run('bash', ['-n', script])).resolves.toBeDefined();
  });

  it('exports only product settings, each as a default that an existing value overrides', () => {
    const exportLines = text.split('\n').filter((l) => l.startsWith('export '));
    expect(exported).toHaveLength(exportLines.length);
    expect(exported.length).toBeGreaterThanOrEqual(7);
    for (const e of exported) {
      expect(settingNames(), e.name).toContain(e.name);
      expect(e.ref, `${e.name} defaults from itself`).toBe(e.name);
    }
  });

  it('defaults match the observability stack (InfluxDB init values and ports, collector OTLP/HTTP port)', () => {
    const compose = readYaml<{ services: Record<string, { environment?: Record<string, string>; ports?: string[] }> }>('observability/docker-compose.yml');
    const init = compose.services.influxdb.environment ?? {};
    const d = Object.fromEntries(exported.map((e) => [e.name, e.value]));
    expect(d.INFLUXDB_TOKEN).toBe(init.DOCKER_INFLUXDB_INIT_ADMIN_TOKEN);
    expect(d.INFLUXDB_ORG).toBe(init.DOCKER_INFLUXDB_INIT_ORG);
    expect(d.INFLUXDB_BUCKET).toBe(init.DOCKER_INFLUXDB_INIT_BUCKET);
    const influxPublished = (compose.services.influxdb.ports ?? []).map(composePort).map((p) => p.published);
    expect(influxPublished).toContain(Number(new URL(d.INFLUXDB_URL).port));
    const collectorPublished = (compose.services['otel-collector'].ports ?? []).map(composePort).map((p) => p.published);
    expect(Number(new URL(d.OTEL_EXPORTER_OTLP_ENDPOINT).port)).toBe(4318);
    expect(collectorPublished).toContain(4318);
  });

  it('launches `node bin/immune.js run` by default and passes arguments through', async () => {
    const plain = await launch([]);
    expect(plain.args).toBe('bin/immune.js run');
    expect(plain.env.INFLUXDB_URL).toBe('http://localhost:8086');
    expect(plain.env.OTEL_SERVICE_NAME).toBe('ai-agent-immune-system');
    expect((await launch(['serve', '--port', '9000'])).args).toBe('bin/immune.js serve --port 9000');
  });

  it('keeps values already set in the environment', async () => {
    const r = await launch([], { INFLUXDB_ORG: 'my-org', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector.internal:4318' });
    expect(r.env.INFLUXDB_ORG).toBe('my-org');
    expect(r.env.OTEL_EXPORTER_OTLP_ENDPOINT).toBe('http://collector.internal:4318');
    expect(r.env.INFLUXDB_BUCKET).toBe('immune_system');
  });
});
