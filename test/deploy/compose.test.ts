import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseConfig, settingNames } from '../../src/config.js';
import { composePort, readYaml, repo } from './files.js';

// Parsed, not run: no container engine runs where these tests run (docs/DEPLOYMENT.md says so).

interface Service {
  image?: string;
  build?: { context: string; dockerfile: string };
  command?: string[];
  environment?: Record<string, string>;
  ports?: string[];
  volumes?: string[];
  depends_on?: Record<string, { condition: string }>;
}
interface Compose {
  services: Record<string, Service>;
  volumes?: Record<string, unknown>;
}
interface Collector {
  receivers: Record<string, { protocols?: Record<string, { endpoint: string }> }>;
  processors?: Record<string, unknown>;
  exporters: Record<string, { endpoint?: string } | null>;
  service: { pipelines: Record<string, { receivers: string[]; processors?: string[]; exporters: string[] }> };
}

const compose = readYaml<Compose>('observability/docker-compose.yml');
const collector = readYaml<Collector>('observability/otel-collector-config.yaml');
const { influxdb, 'otel-collector': otel, immune } = compose.services;
const env = immune.environment ?? {};
const published = (s: Service) => (s.ports ?? []).map(composePort);
const portOf = (endpoint: string) => Number(endpoint.split(':').at(-1));

describe('observability/docker-compose.yml', () => {
  it('has the seed stack (InfluxDB 2 + OpenTelemetry Collector) and the product', () => {
    expect(Object.keys(compose.services).sort()).toEqual(['immune', 'influxdb', 'otel-collector']);
    expect(influxdb.image).toMatch(/^influxdb:2\./);
    expect(otel.image).toMatch(/^otel\/opentelemetry-collector-contrib:\d/);
  });

  it('gives the product only product settings, with values the product accepts', () => {
    for (const name of Object.keys(env)) expect(settingNames(), name).toContain(name);
    const cfg = parseConfig(env);
    expect(cfg.host).toBe('0.0.0.0');
    expect(cfg.runDurationSeconds).toBe(0);
    // The other containers' variables are theirs, not the product's.
    for (const name of Object.keys(influxdb.environment ?? {})) {
      expect(name).toMatch(/^DOCKER_INFLUXDB_INIT_/);
      expect(settingNames()).not.toContain(name);
    }
  });

  it('points the product at the InfluxDB it initialises (org, bucket, token, host and port)', () => {
    const init = influxdb.environment ?? {};
    expect(env.INFLUXDB_TOKEN).toBe(init.DOCKER_INFLUXDB_INIT_ADMIN_TOKEN);
    expect(env.INFLUXDB_ORG).toBe(init.DOCKER_INFLUXDB_INIT_ORG);
    expect(env.INFLUXDB_BUCKET).toBe(init.DOCKER_INFLUXDB_INIT_BUCKET);
    const url = new URL(env.INFLUXDB_URL);
    expect(url.hostname).toBe('influxdb');
    expect(published(influxdb).map((p) => p.target)).toContain(Number(url.port));
    expect(immune.depends_on?.influxdb?.condition).toBe('service_healthy');
  });

  it('points the product at the collector OTLP/HTTP receiver on 4318', () => {
    const url = new URL(env.OTEL_EXPORTER_OTLP_ENDPOINT);
    expect(url.hostname).toBe('otel-collector');
    expect(Number(url.port)).toBe(4318);
    expect(portOf(collector.receivers.otlp.protocols?.http.endpoint ?? '')).toBe(4318);
    expect(portOf(collector.receivers.otlp.protocols?.grpc.endpoint ?? '')).toBe(4317);
    expect(published(otel).map((p) => p.target)).toEqual(expect.arrayContaining([4317, 4318]));
  });

  it('publishes PORT and mounts a named volume at IMMUNE_CACHE_DIR', () => {
    expect(published(immune)).toContainEqual({ published: 8090, target: Number(env.PORT) });
    expect(env.PORT).toBe('8090');
    const [name, target] = (immune.volumes ?? [])[0].split(':');
    expect(target).toBe(env.IMMUNE_CACHE_DIR);
    expect(Object.keys(compose.volumes ?? {})).toContain(name);
  });

  it('builds the product from the repository Dockerfile', () => {
    const dockerfile = new URL(`${immune.build?.context}/${immune.build?.dockerfile}`, repo('observability/'));
    expect(dockerfile.pathname).toBe(repo('Dockerfile').pathname);
    expect(existsSync(dockerfile)).toBe(true);
  });
});

describe('observability/otel-collector-config.yaml', () => {
  it('defines every component its pipelines use, and exports to debug and Prometheus', () => {
    const metrics = collector.service.pipelines.metrics;
    for (const r of metrics.receivers) expect(collector.receivers, r).toHaveProperty(r);
    for (const p of metrics.processors ?? []) expect(collector.processors ?? {}, p).toHaveProperty(p);
    for (const x of metrics.exporters) expect(collector.exporters, x).toHaveProperty(x);
    expect(metrics.exporters.sort()).toEqual(['debug', 'prometheus']);
    // The Prometheus exporter's port is published so it can be scraped from the host.
    expect(published(otel).map((p) => p.target)).toContain(portOf(collector.exporters.prometheus?.endpoint ?? ''));
  });

  it('is the file the collector container loads', () => {
    const configArg = (otel.command ?? []).find((c) => c.startsWith('--config='))?.slice('--config='.length);
    const mount = (otel.volumes ?? []).map((v) => v.split(':')).find(([, target]) => target === configArg);
    expect(mount?.[0]).toBe('./otel-collector-config.yaml');
  });
});
