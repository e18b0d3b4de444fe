import pg from 'pg';
import { startPostgres } from '../harness/postgres.ts';
const p0 = await startPostgres();
for (let i = 0; i < 3; i++) {
  let t0 = performance.now(); const q = await startPostgres(); console.log('pg', performance.now() - t0);
  t0 = performance.now();
  const c = new pg.Client({ host: q.socketDir, port: q.port, user: 'postgres', database: 'postgres' });
  await c.connect(); console.log('connect', performance.now() - t0); await c.query('select 1'); console.log('q', performance.now() - t0); await c.end(); console.log('end', performance.now() - t0);
  const c2 = new pg.Client(q.url()); t0 = performance.now(); await c2.connect(); console.log('tcp scram connect', performance.now() - t0); await c2.end();
  await q.destroy();
}
await p0.destroy();
