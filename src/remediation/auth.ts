import { createHash, timingSafeEqual } from 'node:crypto';
import type { Config } from '../config.ts';

// Credentials for the webhook and the remediation API: `Authorization: Bearer <token>` (what
// Alertmanager's http_config.authorization sends) and, optionally, basic auth. Compared in
// constant time over digests, so neither length nor content leaks through timing.

function same(a: string, b: string): boolean {
  const da = createHash('sha256').update(a).digest();
  const db = createHash('sha256').update(b).digest();
  return timingSafeEqual(da, db);
}

export type AuthResult = 'ok' | 'missing' | 'wrong';

export function checkAuth(header: string | undefined, config: Config): AuthResult {
  const { token, basicAuth, allowUnauthenticated } = config.webhook;
  if (token === undefined && basicAuth === undefined && allowUnauthenticated) return 'ok';
  if (header === undefined || header === '') return 'missing';
  const space = header.indexOf(' ');
  const scheme = header.slice(0, space).toLowerCase();
  const value = header.slice(space + 1).trim();
  if (scheme === 'bearer' && token !== undefined) return same(value, token) ? 'ok' : 'wrong';
  if (scheme === 'basic' && basicAuth !== undefined) {
    const decoded = Buffer.from(value, 'base64').toString('utf8');
    const i = decoded.indexOf(':');
    if (i < 0) return 'wrong';
    const userOk = same(decoded.slice(0, i), basicAuth.username);
    const passOk = same(decoded.slice(i + 1), basicAuth.password);
    return userOk && passOk ? 'ok' : 'wrong';
  }
  return 'wrong';
}

/** True when the config names no credentials and does not allow that explicitly. */
export function webhookUnprotected(config: Config): boolean {
  return config.webhook.token === undefined && config.webhook.basicAuth === undefined && !config.webhook.allowUnauthenticated;
}
