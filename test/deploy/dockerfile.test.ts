import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { SETTINGS, parseConfig, settingNames } from '../../src/config.js';
import { dockerIgnored, dockerignorePatterns, execForm, parseDockerfile, parseEnvArgs, readRepo, repo, type Instruction } from './files.js';

// Parsed, not built: no container engine runs where these tests run (docs/DEPLOYMENT.md says so).
const instructions = parseDockerfile(readRepo('Dockerfile'));
const stages: Instruction[][] = [];
for (const i of instructions) {
  if (i.cmd === 'FROM') stages.push([]);
  stages.at(-1)?.push(i);
}
const runtime = stages.at(-1) as Instruction[];
const all = (stage: Instruction[], cmd: string) => stage.filter((i) => i.cmd === cmd);
const one = (stage: Instruction[], cmd: string) => {
  const found = all(stage, cmd);
  if (found.length !== 1) throw new Error(`expected one ${cmd} in the runtime stage, found ${found.length}`);
  return found[0];
};
const runtimeEnv = Object.assign({}, ...all(runtime, 'ENV').map((i) => parseEnvArgs(i.args))) as Record<string, string>;

describe('Dockerfile', () => {
  it('builds on node:20-bookworm-slim in two stages: npm ci + build, then a runtime without dev dependencies', () => {
    expect(stages).toHaveLength(2);
    for (const s of stages) expect(s[0].args).toMatch(/^node:20-bookworm-slim( AS \w+)?$/i);
    const build = stages[0];
    const alias = /AS (\w+)$/i.exec(build[0].args)?.[1];
    const runs = all(build, 'RUN').map((i) => i.args).join(' && ');
    expect(runs).toMatch(/npm ci\b/);
    expect(runs).toMatch(/npm run build\b/);
    expect(runs).toMatch(/npm prune --omit=dev/);
    // Everything the runtime copies comes from the build stage, and what it copies is what the build produces.
    const copies = all(runtime, 'COPY').map((i) => i.args);
    for (const c of copies) expect(c).toContain(`--from=${alias}`);
    const sources = copies.map((c) => c.split(/\s+/)[1]);
    expect(sources).toEqual(expect.arrayContaining(['/app/package.json', '/app/node_modules', '/app/bin', '/app/dist', '/app/web/dist']));
    expect(readRepo('bin/immune.js')).toContain('../dist/cli/main.js');
    expect(readRepo('tsconfig.json')).toMatch(/"outDir":\s*"dist"/);
  });

  it('sets only product settings, with values the product accepts', () => {
    expect(Object.keys(runtimeEnv).length).toBeGreaterThan(0);
    for (const name of Object.keys(runtimeEnv)) expect(settingNames(), name).toContain(name);
    const cfg = parseConfig(runtimeEnv);
    expect(cfg.host).toBe('0.0.0.0');
    expect(cfg.cacheDir).toBe('/data/immune-cache');
  });

  it('exposes PORT (the product default 8090) and declares IMMUNE_CACHE_DIR as the volume', () => {
    expect(one(runtime, 'EXPOSE').args).toBe(String(SETTINGS.port.default));
    expect(runtimeEnv.PORT).toBe(String(SETTINGS.port.default));
    expect(execForm(one(runtime, 'VOLUME').args)).toEqual([runtimeEnv.IMMUNE_CACHE_DIR]);
  });

  it('runs `node bin/immune.js serve` as a non-root user, with a health check on /healthz at PORT', () => {
    expect([...execForm(one(runtime, 'ENTRYPOINT').args), ...execForm(one(runtime, 'CMD').args)]).toEqual(['node', 'bin/immune.js', 'serve']);
    const user = one(runtime, 'USER').args;
    expect(['root', '0', '0:0']).not.toContain(user);
    // The user must exist before it is switched to and own the cache directory it writes.
    const userAt = runtime.indexOf(one(runtime, 'USER'));
    expect(runtime.slice(0, userAt).some((i) => i.cmd === 'RUN' && i.args.includes(`chown ${user}:${user} ${runtimeEnv.IMMUNE_CACHE_DIR}`))).toBe(true);
    const hc = one(runtime, 'HEALTHCHECK').args;
    const cmd = execForm(hc.slice(hc.indexOf('CMD') + 3).trim());
    expect(cmd.slice(0, 2)).toEqual(['node', '-e']);
    expect(cmd[2]).toContain('/healthz');
    expect(cmd[2]).toContain('process.env.PORT');
    expect(hc).toMatch(/--timeout=\d+s/);
  });
});

describe('.dockerignore', () => {
  const patterns = dockerignorePatterns(readRepo('.dockerignore'));

  it('keeps out what is generated or local', () => {
    for (const p of ['.git/config', 'node_modules/fastify/package.json', 'dist/cli/main.js', 'web/dist/index.html', '.env', 'test-results/results.json', '.immune_cache/run_id']) {
      expect(dockerIgnored(patterns, p), p).toBe(true);
    }
  });

  it('keeps in everything the build copies and compiles', () => {
    const needed = ['package.json', 'package-lock.json', 'tsconfig.json', 'bin/immune.js', 'src/cli/main.ts', 'src/config.ts', 'web/index.html', 'web/vite.config.ts', 'web/src'];
    for (const p of needed) {
      expect(existsSync(repo(p)), `${p} exists`).toBe(true);
      expect(dockerIgnored(patterns, p), p).toBe(false);
    }
    // The first COPY (dependency layer) names files that must exist in the context.
    const first = instructions.find((i) => i.cmd === 'COPY') as Instruction;
    for (const src of first.args.split(/\s+/).slice(0, -1)) expect(dockerIgnored(patterns, src), src).toBe(false);
  });

  it('the matcher follows Docker semantics (negation, last match wins, directories)', () => {
    expect(dockerIgnored(['docs', '!docs/keep.md'], 'docs/keep.md')).toBe(false);
    expect(dockerIgnored(['docs', '!docs/keep.md'], 'docs/other.md')).toBe(true);
    expect(dockerIgnored(['**/*.log'], 'a/b/c.log')).toBe(true);
    expect(dockerIgnored(['*.log'], 'a/c.log')).toBe(false);
    expect(dockerIgnored(['web/dist'], 'web/distribution.ts')).toBe(false);
  });
});
