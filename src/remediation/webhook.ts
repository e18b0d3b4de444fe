import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Config } from '../config.ts';
import type { Engine } from './engine.ts';
import type { AlertIn } from './jobs.ts';
import type { RemediationMetrics } from './metrics.ts';
import { checkAuth } from './auth.ts';

// POST /hooks/alertmanager: Alertmanager's webhook payload, version 4. Each alert is decided
// by its own status, never the group's. 202 only once every resulting job is stored; 503
// when they could not be, so Alertmanager retries (dedupe makes the retry harmless).

const Labels = Type.Record(Type.String(), Type.String());
const Alert = Type.Object({
  status: Type.Union([Type.Literal('firing'), Type.Literal('resolved')]),
  labels: Labels,
  annotations: Type.Optional(Labels),
  startsAt: Type.String({ minLength: 1 }),
  endsAt: Type.Optional(Type.String()),
  generatorURL: Type.Optional(Type.String()),
  fingerprint: Type.String({ minLength: 1, maxLength: 64 }),
});
export const Payload = Type.Object({
  version: Type.Literal('4'),
  groupKey: Type.String(),
  truncatedAlerts: Type.Optional(Type.Integer({ minimum: 0 })),
  status: Type.Union([Type.Literal('firing'), Type.Literal('resolved')]),
  receiver: Type.String(),
  groupLabels: Labels,
  commonLabels: Labels,
  commonAnnotations: Type.Optional(Labels),
  externalURL: Type.Optional(Type.String()),
  alerts: Type.Array(Alert, { maxItems: 10_000 }),
});
type PayloadT = Static<typeof Payload>;

export function authHook(config: Config, metrics: RemediationMetrics | undefined) {
  return async (req: FastifyRequest, reply: FastifyReply): Promise<void> => {
    const r = checkAuth(req.headers.authorization, config);
    if (r === 'ok') return;
    metrics?.notifications.inc({ result: 'unauthorized' });
    await reply
      .status(401)
      .header('www-authenticate', 'Bearer realm="housekeeper"')
      .send({ error: r === 'missing' ? 'missing Authorization header (Bearer token or basic auth)' : 'wrong credentials' });
  };
}

export function registerWebhook(server: FastifyInstance, config: Config, engine: Engine, metrics: RemediationMetrics): void {
  server.post<{ Body: PayloadT }>(
    '/hooks/alertmanager',
    {
      bodyLimit: config.webhook.maxBodyBytes,
      onRequest: authHook(config, metrics),
      schema: { body: Payload },
      attachValidation: true,
    },
    async (req, reply) => {
      if (req.validationError) {
        metrics.notifications.inc({ result: 'invalid' });
        return reply.status(400).send({ error: `invalid Alertmanager payload: ${req.validationError.message}` });
      }
      const alerts = req.body.alerts;
      for (const [i, a] of alerts.entries()) {
        if (Number.isNaN(Date.parse(a.startsAt))) {
          metrics.notifications.inc({ result: 'invalid' });
          return reply.status(400).send({ error: `invalid Alertmanager payload: alerts[${i}].startsAt is not a timestamp` });
        }
      }
      const summary: Record<string, number> = {};
      try {
        // The alerts of one notification are independent: stored concurrently (the engine
        // batches them into one write), and the answer waits for all of them.
        const outcomes = await Promise.all(
          alerts.map((a) => {
            const alert: AlertIn = {
              status: a.status,
              labels: a.labels,
              annotations: a.annotations ?? {},
              startsAt: a.startsAt,
              endsAt: a.endsAt ?? '',
              fingerprint: a.fingerprint,
            };
            return engine.accept(alert);
          }),
        );
        outcomes.forEach((results, i) => {
          for (const result of results) {
            summary[result] = (summary[result] ?? 0) + 1;
            metrics.alerts.inc({ status: alerts[i]?.status ?? 'firing', result });
          }
        });
      } catch (err) {
        req.log.error({ err }, 'could not store remediation jobs; Alertmanager will retry');
        metrics.notifications.inc({ result: 'unavailable' });
        return reply.status(503).send({ error: 'could not store the jobs durably; retry' });
      }
      metrics.notifications.inc({ result: 'accepted' });
      return reply.status(202).send({ status: 'accepted', alerts: alerts.length, results: summary });
    },
  );
  // Bodies over the limit: Fastify answers 413 before the handler; count them too.
  server.addHook('onResponse', async (req, reply) => {
    if (req.url === '/hooks/alertmanager' && reply.statusCode === 413) metrics.notifications.inc({ result: 'invalid' });
  });
}
