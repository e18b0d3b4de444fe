import { request } from 'undici';
import type { Config } from '../config.ts';
import type { Logger } from '../log.ts';

export interface Annotation {
  text: string;
  tags: string[];
}

/** Posts remediation annotations to Grafana's HTTP API. A failure is logged, never thrown. */
export interface Annotator {
  post(a: Annotation): Promise<boolean>;
}

export function createAnnotator(config: Config, log: Logger): Annotator | undefined {
  const g = config.grafana;
  if (!g) return undefined;
  return {
    async post(a) {
      try {
        const body: Record<string, unknown> = { time: Date.now(), tags: [...g.tags, ...a.tags], text: a.text };
        if (g.dashboardUid) body['dashboardUID'] = g.dashboardUid;
        const headers: Record<string, string> = { 'content-type': 'application/json' };
        if (g.token) headers['authorization'] = `Bearer ${g.token}`;
        const res = await request(`${g.url}/api/annotations`, {
          method: 'POST',
          headers,
          body: JSON.stringify(body),
          headersTimeout: 5_000,
          bodyTimeout: 5_000,
        });
        await res.body.dump();
        if (res.statusCode >= 300) {
          log.warn({ status: res.statusCode }, 'grafana annotation refused');
          return false;
        }
        return true;
      } catch (err) {
        log.warn({ err }, 'grafana annotation failed');
        return false;
      }
    },
  };
}
