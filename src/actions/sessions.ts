import { Type, type Static } from '@sinclair/typebox';
import { defineAction, type ActionContext, type AnyAction } from './action.ts';
import { checkSignal, ObjectName, pgTarget, plural, settle, TargetName } from './support.ts';
import { num, str } from '../util/values.ts';

// The two session actions (pg-cancel-long-queries, pg-terminate-idle-in-transaction) differ
// only in which sessions they pick and which signal they send; this builds either.

export const SessionParams = Type.Object(
  {
    target: TargetName('postgres target (config postgres[].name)'),
    threshold_seconds: Type.Integer({ minimum: 1, maximum: 7 * 86_400, description: 'act on sessions over this age' }),
    database: Type.Optional(ObjectName('only sessions on this database (default: all databases of the server)')),
    limit: Type.Integer({ minimum: 1, maximum: 1000, default: 100, description: 'most sessions signalled per run' }),
  },
  { additionalProperties: false },
);
type P = Static<typeof SessionParams>;

const DEFAULT_LIMIT = 100;
// Our own sessions are never touched, whatever protected_applications says.
const OWN_APPLICATION = 'housekeeper';

interface SessionSpec {
  name: string;
  description: string;
  what: string; // "active queries running longer than" …
  verb: string; // "cancel"
  done: string; // "cancelled"
  list: string;
  signal: string;
}

interface Row {
  pid: number;
  usename: string;
  application_name: string;
  datname: string;
  seconds: number;
}

function bound(ctx: ActionContext, p: P): unknown[] {
  const apps = [...new Set([...ctx.config.actions.protectedApplications, OWN_APPLICATION])];
  return [p.threshold_seconds, ctx.config.actions.protectedUsers, apps, p.database ?? null, p.limit ?? DEFAULT_LIMIT];
}

function rowOf(r: Record<string, unknown>): Row {
  return {
    pid: num(r['pid']) ?? 0,
    usename: str(r['usename']),
    application_name: str(r['application_name']),
    datname: str(r['datname']),
    seconds: Math.round(num(r['seconds']) ?? 0),
  };
}

async function list(ctx: ActionContext, p: P, spec: SessionSpec): Promise<{ rows: (Row & { permitted: boolean })[]; total: number; permitted: number }> {
  return pgTarget(ctx, p.target).use(checkSignal(), async (c) => {
    const res = await c.query<Record<string, unknown>>(spec.list, bound(ctx, p));
    const first = res.rows[0];
    return {
      rows: res.rows.map((r) => ({ ...rowOf(r), permitted: r['permitted'] === true })),
      total: first ? (num(first['total']) ?? 0) : 0,
      permitted: first ? (num(first['permitted_total']) ?? 0) : 0,
    };
  });
}

export function sessionAction(spec: SessionSpec): AnyAction {
  const scope = (p: P): string => `${p.database === undefined ? 'all databases' : `database ${JSON.stringify(p.database)}`} of "${p.target}"`;
  return defineAction({
    name: spec.name,
    description: spec.description,
    params: SessionParams,
    idempotent: true,
    disruptive: false,
    targetKey: (p) => `postgres:${p.target}`,

    async plan(ctx, p) {
      const l = await list(ctx, p, spec);
      const limit = p.limit ?? DEFAULT_LIMIT;
      const acting = Math.min(l.permitted, limit);
      const notPermitted = l.total - l.permitted;
      return {
        summary:
          `${spec.verb} ${plural(acting, 'session')} with ${spec.what} ${p.threshold_seconds} s on ${scope(p)}` +
          (notPermitted > 0 ? ` (${notPermitted} more our role may not signal)` : '') +
          (l.permitted > limit ? ` (${l.permitted - limit} more over the limit of ${limit})` : ''),
        details: { sessions: l.rows, total: l.total, permitted: l.permitted, limit },
        nothingToDo: acting === 0,
      };
    },

    async run(ctx, p, signal) {
      const rows = await pgTarget(ctx, p.target).use(signal, async (c) => (await c.query<Record<string, unknown>>(spec.signal, bound(ctx, p))).rows);
      const signalled = rows.filter((r) => r['signalled'] === true).map(rowOf);
      const gone = rows.length - signalled.length;
      return {
        summary: `${spec.done} ${plural(signalled.length, 'session')} on ${scope(p)}` + (gone > 0 ? ` (${gone} had ended)` : ''),
        details: { sessions: signalled, ended_before_signal: gone },
      };
    },

    async verify(ctx, p) {
      return settle(async () => {
        const l = await list(ctx, p, spec);
        return {
          fixed: l.total === 0,
          detail:
            l.total === 0
              ? `no session with ${spec.what} ${p.threshold_seconds} s on ${scope(p)}`
              : `${plural(l.total, 'session')} with ${spec.what} ${p.threshold_seconds} s left on ${scope(p)}` +
                (l.total > l.permitted ? ` (${l.total - l.permitted} our role may not signal)` : ''),
        };
      });
    },
  });
}
