import { runTool, serverOwner } from '../harness/proc.ts';
import fs from 'node:fs';
const tpl = fs.readdirSync('/tmp/housekeeper-harness-0')[0];
for (let i = 0; i < 3; i++) {
  const t0 = performance.now();
  await runTool('cp', ['-a', '--reflink=auto', `/tmp/housekeeper-harness-0/${tpl}/data`, `/tmp/cpt${i}`], { asOwner: serverOwner });
  console.log('cp', performance.now() - t0);
  const t1 = performance.now();
  await runTool('true', [], { asOwner: serverOwner });
  console.log('true', performance.now() - t1);
  fs.rmSync(`/tmp/cpt${i}`, { recursive: true });
}
