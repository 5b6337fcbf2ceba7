import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { execForm, parseDockerfile, readRepo, readYaml, repo } from './files.js';

const run = promisify(execFile);

/** The CLI subcommand each deployment file starts the product with. */
function commandsUsed(): Record<string, string> {
  const docker = parseDockerfile(readRepo('Dockerfile'));
  const cmd = docker.filter((i) => i.cmd === 'CMD').at(-1);
  const compose = readYaml<{ services: { immune: { command: string[] } } }>('observability/docker-compose.yml');
  const k8s = readYaml<{ spec: { template: { spec: { containers: Array<{ args: string[] }> } } } }>('deploy/kubernetes/deployment.yaml');
  const start = /"\$\{@:-(\w+)\}"/.exec(readRepo('start.sh'))?.[1];
  return {
    Dockerfile: execForm(cmd?.args ?? '[]')[0],
    'docker-compose.yml': compose.services.immune.command[0],
    'deployment.yaml': k8s.spec.template.spec.containers[0].args[0],
    'start.sh': start ?? '',
  };
}

describe('deployment commands', () => {
  it('start the product with subcommands the CLI has', async () => {
    // The real CLI, asked for its help (no server starts): the built one the image runs (`npm test` builds first), else from source.
    const built = existsSync(repo('dist/cli/main.js'));
    const argv = built ? [fileURLToPath(repo('bin/immune.js')), '--help'] : ['--import', 'tsx', fileURLToPath(repo('src/cli/main.ts')), '--help'];
    const { stdout } = await run(process.execPath, argv, { cwd: fileURLToPath(repo('')) });
    const listed = new Set([...stdout.matchAll(/^ {2}([a-z][a-z-]*)\b/gm)].map((m) => m[1]));
    for (const [file, command] of Object.entries(commandsUsed())) expect(listed, `${file} runs '${command}'`).toContain(command);
  });
});
