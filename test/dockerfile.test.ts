// The Dockerfile, checked without a Docker engine (none runs on these machines): its build
// context (.dockerignore) holds every COPY source; a simulation of its two stages (the COPYs
// from the context as Docker would filter it, the TypeScript build, the runtime stage's
// COPYs, `ln -s` and `mkdir -p`) holds what CMD, ENTRYPOINT, ENV and the config's defaults
// name; and the CLI runs from the simulated image, which has dist/ and no sources.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, isAbsolute, join, posix, relative, resolve } from 'node:path';
import { DockerfileParser, type Instruction } from 'dockerfile-ast';
import { createRequire } from 'node:module';
import { parseConfig } from '../src/config.ts';

// CommonJS whose types declare an ES default export: required, so the types match what Node loads.
const ignore = createRequire(import.meta.url)('@balena/dockerignore') as typeof import('@balena/dockerignore').default;

const root = resolve(import.meta.dirname, '..');
const dockerfile = DockerfileParser.parse(readFileSync(join(root, 'Dockerfile'), 'utf8'));
const context = ignore().add(readFileSync(join(root, '.dockerignore'), 'utf8'));

interface Step {
  keyword: string;
  args: string[];
  /** JSON (exec) form of CMD / ENTRYPOINT. */
  json: string[];
  /** COPY --from. */
  from: string | undefined;
}
interface Stage {
  name: string | undefined;
  steps: Step[];
}

function step(i: Instruction): Step {
  const json = 'getJSONStrings' in i ? (i as unknown as { getJSONStrings(): { getJSONValue(): string }[] }).getJSONStrings().map((s) => s.getJSONValue()) : [];
  const flag = 'getFromFlag' in i ? (i as unknown as { getFromFlag(): { getValue(): string | null } | null }).getFromFlag() : null;
  return { keyword: i.getKeyword(), args: i.getArguments().map((a) => a.getValue()), json, from: flag?.getValue() ?? undefined };
}

const stages: Stage[] = [];
for (const i of dockerfile.getInstructions()) {
  const s = step(i);
  if (s.keyword === 'FROM') stages.push({ name: s.args[2], steps: [] });
  else stages.at(-1)?.steps.push(s);
}
const runtime = stages.at(-1) as Stage;
const last = (keyword: string): Step | undefined => runtime.steps.filter((s) => s.keyword === keyword).at(-1);
const env = new Map(
  dockerfile
    .getENVs()
    .flatMap((e) => e.getProperties())
    .map((p) => [p.getName(), p.getValue() ?? '']),
);

/** A path of the context (repo-relative) that Docker would leave out of the build context. */
const excluded = (rel: string): boolean => context.ignores(rel.replace(/\/$/, ''));

/** Copies a context path as `docker build` sees it: what .dockerignore excludes is not there. */
function copyFromContext(src: string, dest: string): void {
  mkdirSync(dirname(dest), { recursive: true });
  cpSync(join(root, src), dest, { recursive: true, filter: (from) => !excluded(relative(root, from)) || from === join(root, src) });
}

/** Applies a stage's COPY steps into fsRoot (WORKDIR-relative destinations); --from reads the named stage's root. */
function applyCopies(stage: Stage, fsRoot: string, stageRoots: Map<string, string>): void {
  let workdir = '/';
  for (const s of stage.steps) {
    if (s.keyword === 'WORKDIR') workdir = posix.resolve(workdir, s.args[0] as string);
    if (s.keyword !== 'COPY') continue;
    const srcs = s.args.slice(0, -1);
    const destArg = s.args.at(-1) as string;
    const dest = posix.resolve(workdir, destArg);
    for (const src of srcs) {
      const target = destArg.endsWith('/') ? posix.join(dest, posix.basename(src)) : dest;
      if (s.from === undefined) {
        copyFromContext(src, join(fsRoot, target));
        continue;
      }
      const fromRoot = stageRoots.get(s.from);
      assert.ok(fromRoot, `COPY --from=${s.from}: no such stage`);
      const from = join(fromRoot, src);
      mkdirSync(dirname(join(fsRoot, target)), { recursive: true });
      // node_modules is a link in the simulated build stage: keep it a link.
      if (lstatSync(from).isSymbolicLink()) symlinkSync(realpathSync(from), join(fsRoot, target));
      else cpSync(from, join(fsRoot, target), { recursive: true });
    }
  }
}

/** The runtime stage's `ln -s A B` and `mkdir -p D` (the only RUN effects the paths depend on), rooted at fsRoot. */
function applyLinksAndDirs(stage: Stage, fsRoot: string): void {
  for (const s of stage.steps.filter((x) => x.keyword === 'RUN')) {
    const commands = s.args.join(' ').split('&&').map((c) => c.trim().split(/\s+/));
    for (const c of commands) {
      if (c[0] === 'mkdir' && c[1] === '-p') for (const d of c.slice(2)) mkdirSync(join(fsRoot, d), { recursive: true });
      if (c[0] === 'ln' && c[1] === '-s' && c.length === 4) {
        const [target, link] = [c[2] as string, c[3] as string];
        mkdirSync(dirname(join(fsRoot, link)), { recursive: true });
        symlinkSync(isAbsolute(target) ? join(fsRoot, target) : target, join(fsRoot, link));
      }
    }
  }
}

const nodeBin = spawnSync('bash', ['-c', `source ${JSON.stringify(join(root, 'scripts/lib.sh'))}; project_node_bin ${JSON.stringify(root)}`], { encoding: 'utf8' }).stdout.trim();

describe('Dockerfile', () => {
  test('is two stages, the runtime one on the same base as the build', () => {
    assert.equal(stages.length, 2);
    assert.equal(stages[0]?.name, 'build');
    const froms = dockerfile.getFROMs().map((f) => f.getImage());
    assert.equal(froms[0], froms[1]);
  });

  test('every COPY source from the context exists and is not excluded by .dockerignore', () => {
    const sources = stages.flatMap((s) => s.steps.filter((x) => x.keyword === 'COPY' && x.from === undefined).flatMap((x) => x.args.slice(0, -1)));
    assert.ok(sources.length >= 8, `found only ${sources.length} COPY sources`);
    for (const src of sources) {
      assert.ok(existsSync(join(root, src)), `COPY ${src}: not in the repository`);
      assert.equal(excluded(src), false, `COPY ${src}: excluded by .dockerignore`);
    }
  });

  test('.dockerignore keeps installed, built and test-only things out of the context', () => {
    for (const p of ['node_modules', '.git', '.tools', 'dist', 'test', 'bench', 'bench/results', 'alerts/tests', 'server.log']) {
      assert.equal(excluded(p), true, `${p} would be sent to the build`);
    }
  });

  test('tini is PID 1: installed from Debian in the runtime stage and the ENTRYPOINT', () => {
    const runs = runtime.steps.filter((s) => s.keyword === 'RUN').flatMap((s) => s.args);
    assert.ok(runs.includes('tini'), 'the runtime stage does not apt-get install tini');
    // Debian's tini package installs /usr/bin/tini.
    assert.deepEqual(last('ENTRYPOINT')?.json, ['/usr/bin/tini', '--']);
  });

  test('the port agrees: EXPOSE, the health check URL and the config default', () => {
    const cfg = parseConfig('{}\n', '/etc/housekeeper/housekeeper.yml', {});
    assert.equal(last('EXPOSE')?.args[0], String(cfg.server.port));
    assert.equal(new URL(env.get('HOUSEKEEPER_HEALTH_URL') ?? '').port, String(cfg.server.port));
    assert.equal(last('USER')?.args[0], 'node', 'runs as the non-root node user');
  });
});

describe('the image, simulated from the Dockerfile', () => {
  let tmp = '';
  let image = '';
  before(() => {
    tmp = mkdtempSync(join(tmpdir(), 'hk-docker-'));
    // Build stage: its COPYs from the context, npm ci's result (the repo's node_modules, as a
    // link), then its RUN of tsc, which must be the production build.
    const build = join(tmp, 'build');
    const buildStage = stages[0] as Stage;
    applyCopies(buildStage, build, new Map());
    symlinkSync(join(root, 'node_modules'), join(build, 'app/node_modules'));
    const tscRun = buildStage.steps.find((s) => s.keyword === 'RUN' && s.args.includes('node_modules/typescript/bin/tsc'));
    assert.ok(tscRun?.args.join(' ').includes('tsc -p tsconfig.build.json'), 'the build stage does not run tsc -p tsconfig.build.json');
    const tsc = spawnSync(nodeBin, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.build.json'], { cwd: join(build, 'app'), encoding: 'utf8' });
    assert.equal(tsc.status, 0, `tsc in the simulated build stage failed:\n${tsc.stdout}${tsc.stderr}`);
    image = join(tmp, 'image');
    applyCopies(runtime, image, new Map([['build', build]]));
    applyLinksAndDirs(runtime, image);
  });
  after(() => rmSync(tmp, { recursive: true, force: true }));

  test('CMD runs the compiled service, from WORKDIR; the image has no TypeScript sources', () => {
    const workdir = last('WORKDIR')?.args[0] as string;
    const cmd = last('CMD')?.json ?? [];
    assert.equal(cmd[0], 'node');
    const script = cmd.at(-1) as string;
    assert.match(script, /\.js$/);
    assert.ok(existsSync(join(image, workdir, script)), `${script} is not in the image`);
    assert.ok(existsSync(join(image, workdir, 'dist/src/cli.js')));
    assert.ok(existsSync(join(image, workdir, 'dist/src/faiss/check-child.js')), 'the FAISS check child is not built');
    assert.equal(existsSync(join(image, workdir, 'src')), false);
  });

  test("the config's relative defaults land on what the image ships: rules/ and the state directory", () => {
    const configPath = env.get('HOUSEKEEPER_CONFIG') ?? '';
    assert.ok(isAbsolute(configPath));
    // The image's paths, resolved inside the simulated root.
    const cfg = parseConfig('remediation: {}\nwebhook: { allow_unauthenticated: true }\n', join(image, configPath), {});
    const shipped = readdirSync(join(root, 'rules')).filter((f) => f.endsWith('.yml')).sort();
    assert.ok(shipped.length > 0);
    assert.deepEqual(readdirSync(cfg.remediation.rulesDir).sort(), shipped);
    for (const f of shipped) assert.equal(readFileSync(join(cfg.remediation.rulesDir, f), 'utf8'), readFileSync(join(root, 'rules', f), 'utf8'));
    // state.path's default goes through the link to /var/lib/housekeeper, the declared volume.
    assert.equal(realpathSync(cfg.state.path), realpathSync(join(image, '/var/lib/housekeeper/state')));
    assert.equal(last('VOLUME')?.args[0], '/var/lib/housekeeper');
    // alerts/ beside rules/, without the promtool tests.
    const alerts = readdirSync(join(image, dirname(configPath), 'alerts')).filter((f) => f.endsWith('.yml')).sort();
    assert.deepEqual(alerts, readdirSync(join(root, 'alerts')).filter((f) => f.endsWith('.yml')).sort());
  });

  test('the housekeeper CLI on PATH runs the build: --help, and exit 2 on a bad config', () => {
    const cli = join(image, '/usr/local/bin/housekeeper');
    assert.ok(lstatSync(cli).isSymbolicLink());
    const childEnv = { PATH: `${dirname(nodeBin)}:/usr/bin:/bin`, HOUSEKEEPER_CONFIG: join(tmp, 'missing.yml') };
    const help = spawnSync(cli, ['--help'], { env: childEnv, encoding: 'utf8' });
    assert.equal(help.status, 0, help.stderr);
    assert.match(help.stdout, /usage: housekeeper check/);
    const check = spawnSync(cli, ['check'], { env: childEnv, encoding: 'utf8' });
    assert.equal(check.status, 2, check.stderr);
    assert.match(check.stderr, /invalid config .*missing\.yml: cannot read file/);
  });
});
