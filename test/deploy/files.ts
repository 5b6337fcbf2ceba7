import { readFileSync } from 'node:fs';
import { parse, parseAllDocuments } from 'yaml';

/**
 * Readers for the deployment files. No container engine or cluster runs where
 * the tests run, so these files are checked by parsing them and comparing what
 * they say with the product's own settings table, ports and paths.
 */

export const repo = (path: string) => new URL(`../../${path}`, import.meta.url);
export const readRepo = (path: string) => readFileSync(repo(path), 'utf8');

/** Parses one YAML document strictly (duplicate keys and syntax errors throw). */
export function readYaml<T = Record<string, unknown>>(path: string): T {
  return parse(readRepo(path), { uniqueKeys: true, strict: true }) as T;
}

export function readYamlDocs(path: string): Array<Record<string, unknown>> {
  return parseAllDocuments(readRepo(path), { uniqueKeys: true, strict: true }).map((d) => {
    if (d.errors.length > 0) throw new Error(`${path}: ${d.errors[0].message}`);
    return d.toJS() as Record<string, unknown>;
  });
}

export interface Instruction {
  /** 1-based line where the instruction starts. */
  line: number;
  cmd: string;
  args: string;
}

/** A tiny Dockerfile parser: joins `\` continuations, drops comments and blank lines, splits instruction and arguments. */
export function parseDockerfile(text: string): Instruction[] {
  const out: Instruction[] = [];
  let pending: { line: number; text: string } | null = null;
  text.split('\n').forEach((raw, i) => {
    const line = raw.trimEnd();
    if (line.trimStart().startsWith('#') || (line.trim() === '' && !pending)) return;
    const continued = line.endsWith('\\');
    const piece = continued ? line.slice(0, -1) : line;
    pending = pending ? { line: pending.line, text: `${pending.text} ${piece.trim()}` } : { line: i + 1, text: piece.trim() };
    if (!continued) {
      const m = /^(\S+)\s*(.*)$/.exec(pending.text) as RegExpExecArray;
      out.push({ line: pending.line, cmd: m[1].toUpperCase(), args: m[2].trim() });
      pending = null;
    }
  });
  if (pending) throw new Error('Dockerfile ends inside a line continuation');
  return out;
}

/** `ENV A=1 B="two words"` (and the legacy `ENV A 1`) → {A: '1', B: 'two words'}. */
export function parseEnvArgs(args: string): Record<string, string> {
  const out: Record<string, string> = {};
  if (!/^[A-Za-z_][A-Za-z0-9_]*=/.test(args)) {
    const m = /^(\S+)\s+(.*)$/.exec(args) as RegExpExecArray;
    out[m[1]] = m[2];
    return out;
  }
  for (const m of args.matchAll(/([A-Za-z_][A-Za-z0-9_]*)=("(?:[^"\\]|\\.)*"|\S*)/g)) out[m[1]] = m[2].startsWith('"') ? (JSON.parse(m[2]) as string) : m[2];
  return out;
}

/** The exec (JSON array) form of CMD/ENTRYPOINT/VOLUME; anything else is refused so shell forms cannot slip in unnoticed. */
export function execForm(args: string): string[] {
  const v = JSON.parse(args) as unknown;
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) throw new Error(`not an exec-form array: ${args}`);
  return v as string[];
}

/**
 * Whether .dockerignore excludes a path (Docker's rules: patterns relative to
 * the context root, `*` within a segment, `**` across segments, `!` re-includes,
 * the last matching pattern wins; a pattern matching a directory excludes
 * everything under it).
 */
export function dockerIgnored(patterns: string[], path: string): boolean {
  let ignored = false;
  for (const raw of patterns) {
    const neg = raw.startsWith('!');
    const p = (neg ? raw.slice(1) : raw).replace(/^\/+|\/+$/g, '');
    const re = new RegExp(
      `^${p
        .split('/')
        .map((seg) => (seg === '**' ? '.*' : seg.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]')))
        .join('/')}(/.*)?$`,
    );
    if (re.test(path)) ignored = !neg;
  }
  return ignored;
}

export function dockerignorePatterns(text: string): string[] {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
}

/** "8090:8090" / "127.0.0.1:8090:8090/tcp" → {published, target}. */
export function composePort(spec: string | number): { published: number; target: number } {
  const parts = String(spec).replace(/\/(tcp|udp)$/, '').split(':');
  const target = Number(parts.at(-1));
  const published = parts.length >= 2 ? Number(parts.at(-2)) : target;
  return { published, target };
}
