import { createHash } from 'node:crypto';

// Name-based UUIDs (RFC 9562 version 5): the same name always gives the same id, which is
// how every replica, and every repeat of an Alertmanager notification, names the same job.
const NAMESPACE = Buffer.from('6d1b3c9a4e2f4b7d8a5c0e9f1a2b3c4d', 'hex');

export function uuidFor(name: string): string {
  const h = createHash('sha1').update(NAMESPACE).update(name).digest();
  h[6] = ((h[6] as number) & 0x0f) | 0x50;
  h[8] = ((h[8] as number) & 0x3f) | 0x80;
  const x = h.subarray(0, 16).toString('hex');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
}
