import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { Config } from '../config.ts';
import * as sql from '../sql/state.ts';
import type { StateDb } from './state.ts';
import { authHook } from './webhook.ts';

// GET /api/remediations: the remediation log (the runbook's maintenance log), newest first,
// filtered and paged by id. Protected like the webhook.

const Query = Type.Object(
  {
    rule: Type.Optional(Type.String({ maxLength: 200 })),
    action: Type.Optional(Type.String({ maxLength: 200 })),
    target: Type.Optional(Type.String({ maxLength: 200 })),
    outcome: Type.Optional(Type.String({ maxLength: 50 })),
    since: Type.Optional(Type.String({ format: 'date-time' })),
    until: Type.Optional(Type.String({ format: 'date-time' })),
    before: Type.Optional(Type.Integer({ minimum: 1 })),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500 })),
  },
  { additionalProperties: false },
);

export function registerApi(server: FastifyInstance, config: Config, state: StateDb): void {
  server.get<{ Querystring: Static<typeof Query> }>(
    '/api/remediations',
    { onRequest: authHook(config, undefined), schema: { querystring: Query } },
    async (req) => {
      const q = req.query;
      const limit = q.limit ?? 50;
      const rows = await state.query<Record<string, unknown>>(sql.LIST_LOG, [
        q.rule ?? null,
        q.action ?? null,
        q.target ?? null,
        q.outcome ?? null,
        q.since ?? null,
        q.until ?? null,
        q.before ?? null,
        limit,
      ]);
      const items = rows.map((r) => ({ ...r, id: Number(r['id']) }));
      const last = items[items.length - 1];
      return { items, next: items.length === limit && last ? `before=${last.id}` : null };
    },
  );
}
