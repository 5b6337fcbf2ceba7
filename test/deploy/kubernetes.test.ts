import { existsSync, readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { SETTINGS, parseConfig, settingNames } from '../../src/config.js';
import { readYaml, readYamlDocs, repo } from './files.js';

// Parsed, not applied: no cluster is reachable where these tests run (docs/DEPLOYMENT.md says so).

interface K8s {
  apiVersion: string;
  kind: string;
  metadata: { name: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  spec?: Record<string, unknown>;
  stringData?: Record<string, string>;
}
interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: { secretKeyRef?: { name: string; key: string; optional?: boolean } };
}
interface Probe {
  httpGet: { path: string; port: string | number };
}
interface Container {
  name: string;
  image: string;
  args?: string[];
  ports: Array<{ name?: string; containerPort: number }>;
  env: EnvVar[];
  volumeMounts: Array<{ name: string; mountPath: string }>;
  livenessProbe: Probe;
  readinessProbe: Probe;
  startupProbe?: Probe;
  securityContext?: { allowPrivilegeEscalation?: boolean; readOnlyRootFilesystem?: boolean };
}
interface PodSpec {
  securityContext?: { runAsNonRoot?: boolean; runAsUser?: number };
  containers: Container[];
  volumes: Array<{ name: string; persistentVolumeClaim?: { claimName: string }; emptyDir?: object }>;
}

const dir = 'deploy/kubernetes';
const docs: K8s[] = readdirSync(repo(dir))
  .filter((f) => f.endsWith('.yaml'))
  .flatMap((f) => readYamlDocs(`${dir}/${f}`) as unknown as K8s[]);
const byKind = (kind: string) => {
  const found = docs.filter((d) => d.kind === kind);
  if (found.length !== 1) throw new Error(`expected one ${kind}, found ${found.length}`);
  return found[0];
};
const deployment = byKind('Deployment');
const service = byKind('Service');
const pvc = byKind('PersistentVolumeClaim');
const secret = byKind('Secret');
const spec = deployment.spec as { replicas: number; strategy: { type: string }; selector: { matchLabels: Record<string, string> }; template: { metadata: { labels: Record<string, string> }; spec: PodSpec } };
const pod = spec.template.spec;
const container = pod.containers[0];
const literal = Object.fromEntries(container.env.filter((e) => e.value !== undefined).map((e) => [e.name, e.value as string]));
const namedPort = (port: string | number) => (typeof port === 'number' ? port : container.ports.find((p) => p.name === port)?.containerPort);

describe('deploy/kubernetes', () => {
  it('runs one replica, replaced (never two pods on the ReadWriteOnce volume)', () => {
    expect(spec.replicas).toBe(1);
    expect(spec.strategy.type).toBe('Recreate');
    expect(pod.containers).toHaveLength(1);
    expect(container.args).toEqual(['serve']);
    expect((pvc.spec as { accessModes: string[] }).accessModes).toEqual(['ReadWriteOnce']);
  });

  it('sets only product settings, with values the product accepts', () => {
    for (const e of container.env) expect(settingNames(), e.name).toContain(e.name);
    const cfg = parseConfig(literal);
    expect(cfg.host).toBe('0.0.0.0');
    expect(cfg.port).toBe(SETTINGS.port.default);
  });

  it('takes INGEST_API_KEY and OPERATOR_TOKEN from the Secret, whose example has every referenced key', () => {
    for (const name of ['INGEST_API_KEY', 'OPERATOR_TOKEN']) {
      const e = container.env.find((x) => x.name === name);
      expect(e?.value, `${name} must not be a literal`).toBeUndefined();
      expect(e?.valueFrom?.secretKeyRef?.optional ?? false).toBe(false);
    }
    for (const e of container.env.filter((x) => x.valueFrom?.secretKeyRef)) {
      const ref = e.valueFrom?.secretKeyRef as { name: string; key: string };
      expect(ref.name).toBe(secret.metadata.name);
      expect(Object.keys(secret.stringData ?? {})).toContain(ref.key);
    }
  });

  it('listens on PORT and probes /healthz (liveness, startup) and /readyz (readiness) on it', () => {
    expect(namedPort('http')).toBe(Number(literal.PORT));
    expect(container.livenessProbe.httpGet.path).toBe('/healthz');
    expect(container.startupProbe?.httpGet.path).toBe('/healthz');
    expect(container.readinessProbe.httpGet.path).toBe('/readyz');
    for (const p of [container.livenessProbe, container.readinessProbe, container.startupProbe as Probe]) expect(namedPort(p.httpGet.port)).toBe(8090);
  });

  it('mounts the PersistentVolumeClaim at IMMUNE_CACHE_DIR', () => {
    const mount = container.volumeMounts.find((m) => m.mountPath === literal.IMMUNE_CACHE_DIR);
    expect(mount).toBeDefined();
    const volume = pod.volumes.find((v) => v.name === mount?.name);
    expect(volume?.persistentVolumeClaim?.claimName).toBe(pvc.metadata.name);
  });

  it('runs as the image user (uid 1000, "node" in node images), without privilege escalation', () => {
    expect(pod.securityContext?.runAsNonRoot).toBe(true);
    expect(pod.securityContext?.runAsUser).toBe(1000);
    expect(container.securityContext?.allowPrivilegeEscalation).toBe(false);
    // A read-only root filesystem needs a writable /tmp.
    if (container.securityContext?.readOnlyRootFilesystem) expect(container.volumeMounts.map((m) => m.mountPath)).toContain('/tmp');
  });

  it('exposes the pod through the Service and advertises /metrics for scraping', () => {
    const s = service.spec as { selector: Record<string, string>; ports: Array<{ port: number; targetPort: string | number }> };
    expect(s.selector).toEqual(spec.selector.matchLabels);
    for (const [k, v] of Object.entries(s.selector)) expect(spec.template.metadata.labels[k]).toBe(v);
    expect(namedPort(s.ports[0].targetPort)).toBe(8090);
    expect(service.metadata.annotations?.['prometheus.io/path']).toBe('/metrics');
    expect(service.metadata.annotations?.['prometheus.io/port']).toBe(literal.PORT);
  });

  it('kustomization applies every manifest except the example Secret', () => {
    const k = readYaml<{ resources: string[] }>(`${dir}/kustomization.yaml`);
    for (const r of k.resources) expect(existsSync(repo(`${dir}/${r}`)), r).toBe(true);
    expect(k.resources.sort()).toEqual(['deployment.yaml', 'pvc.yaml', 'service.yaml']);
  });
});
