import net from 'node:net';
import fs from 'node:fs';
import { forceNextPorts } from '../harness/ports.ts';
import { startPostgres } from '../harness/postgres.ts';
const blocker = net.createServer(); await new Promise<void>(r => blocker.listen(0, '127.0.0.1', r));
const port = (blocker.address() as net.AddressInfo).port;
for (let i = 0; i < 3; i++) {
let t0=performance.now(); forceNextPorts(port); const p = await startPostgres(); console.log('pg forced', performance.now()-t0);
console.log(fs.readFileSync(p.logFile,'utf8'));
t0=performance.now(); const q = await startPostgres(); console.log('pg', performance.now()-t0);
await p.destroy(); await q.destroy();
}
blocker.close();
