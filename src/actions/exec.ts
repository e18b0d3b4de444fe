import { Type } from '@sinclair/typebox';
import type { ExecProgramConfig } from '../config.ts';
import { runArgv } from '../util/run-argv.ts';
import { defineAction, type ActionContext } from './action.ts';

// The escape hatch for fixes housekeeper does not know (certbot renew, a service reload):
// a program from config, run as an argv array with no shell. Alert labels reach it only as
// environment variables HK_LABEL_<NAME>, and only those the program's env_from_labels
// allows; their text is never parsed by anything of ours. It is killed on timeout, and on
// cancel (the alert resolved, or shutdown). Not idempotent in general: a crashed run is not
// repeated.

const Params = Type.Object(
  {
    program: Type.String({ pattern: '^[A-Za-z0-9_.-]+$', description: 'a key of actions.exec in config' }),
    labels: Type.Optional(Type.Record(Type.String({ pattern: '^[a-zA-Z_][a-zA-Z0-9_]*$' }), Type.String({ maxLength: 1024 }))),
  },
  { additionalProperties: false },
);

function program(ctx: ActionContext, name: string): ExecProgramConfig {
  const p = ctx.config.actions.exec[name];
  if (!p) throw new Error(`no program "${name}" under actions.exec in config`);
  return p;
}

/** The environment the program gets: PATH and HOME only, plus the allowed labels. */
function programEnv(p: ExecProgramConfig, labels: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = { PATH: process.env['PATH'] ?? '/usr/bin:/bin', HOME: process.env['HOME'] ?? '/' };
  for (const [k, v] of Object.entries(labels)) {
    if (p.envFromLabels.includes(k)) env[`HK_LABEL_${k.toUpperCase()}`] = v;
  }
  return env;
}

const lastExit = new Map<string, number | null>();

export default defineAction({
  name: 'exec',
  description:
    'Runs a program named in config (argv, no shell) with allowed alert labels as HK_LABEL_* environment variables; killed on timeout or cancel. Verified by the program\'s verify_argv, else by its exit code. Not assumed idempotent.',
  params: Params,
  idempotent: false,
  disruptive: false,
  targetKey: (p) => `exec:${p.program}`,
  async plan(ctx, p) {
    const prog = program(ctx, p.program);
    const env = programEnv(prog, p.labels ?? {});
    return {
      summary: `run ${prog.argv.join(' ')} (timeout ${prog.timeoutMs / 1000}s)`,
      details: { argv: prog.argv, env: Object.keys(env).filter((k) => k.startsWith('HK_LABEL_')) },
    };
  },
  async run(ctx, p, signal) {
    const prog = program(ctx, p.program);
    const exit = await runArgv(prog.argv, { env: programEnv(prog, p.labels ?? {}), cwd: prog.cwd, timeoutMs: prog.timeoutMs, signal });
    lastExit.set(p.program, exit.code);
    if (exit.code !== 0) throw new Error(`${prog.argv[0]} exited ${exit.code ?? exit.signal}: ${exit.output.trim().slice(-500)}`);
    return { summary: `${prog.argv[0]} exited 0`, details: { output: exit.output.trim().slice(-1000) } };
  },
  async verify(ctx, p) {
    const prog = program(ctx, p.program);
    if (!prog.verifyArgv) {
      const code = lastExit.get(p.program);
      return { fixed: code === 0, detail: `no verify_argv; last exit ${String(code)}` };
    }
    const exit = await runArgv(prog.verifyArgv, { env: programEnv(prog, p.labels ?? {}), cwd: prog.cwd, timeoutMs: prog.timeoutMs });
    return { fixed: exit.code === 0, detail: `${prog.verifyArgv[0]} exited ${exit.code ?? exit.signal}` };
  },
});
