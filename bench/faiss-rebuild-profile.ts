// Where faiss-node's time goes in a build, for bench/faiss-rebuild.ts: trains IVF on a sample
// and adds every vector of a raw float32 file, through number[] (what stock faiss-node 0.5.1
// takes) and, when the addon accepts it (scripts/faiss-shim/float32.patch, applied by setup), through
// Float32Array. IndexFlat.add is a copy inside FAISS, so its time is faiss-node's conversion.
// Prints one JSON object. Usage:
//   node bench/faiss-rebuild-profile.ts ADDON_PACKAGE_DIR VECTORS_F32_FILE COUNT DIM NLIST TRAIN
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

interface Idx {
  add(x: number[] | Float32Array): void;
  train(x: number[] | Float32Array): void;
  ntotal(): number;
}
interface Faiss {
  IndexFlatL2: new (d: number) => Idx;
  Index: { fromFactory(d: number, f: string, m: number): Idx };
}

const [pkg, file, countS, dimS, nlistS, trainS] = process.argv.slice(2);
const faiss = createRequire(import.meta.url)(pkg as string) as Faiss;
const N = Number(countS);
const D = Number(dimS);
const factory = `IVF${nlistS},Flat`;
const TRAIN = Number(trainS);
const buf = readFileSync(file as string);
const x = new Float32Array(buf.buffer, buf.byteOffset, N * D);
const hwm = (): number => Number(/VmHWM:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? 0) * 1024;
const time = (f: () => void): number => {
  const t0 = performance.now();
  f();
  return (performance.now() - t0) / 1000;
};
const toArray = (from: number, rows: number): number[] => {
  const a = new Array<number>(rows * D);
  for (let i = 0; i < a.length; i++) a[i] = x[from * D + i] as number;
  return a;
};
const takesFloat32 = ((): boolean => {
  try {
    const p = new faiss.IndexFlatL2(2);
    p.add(new Float32Array([1, 2]));
    return p.ntotal() === 1;
  } catch {
    return false;
  }
})();
const BATCH = 2000;
const out: Record<string, number | boolean> = { takesFloat32 };
if (process.argv[8] === 'float32') {
  const ivf = faiss.Index.fromFactory(D, factory, 1);
  out['train'] = time(() => ivf.train(x.subarray(0, TRAIN * D)));
  out['add'] = time(() => {
    for (let i = 0; i < N; i += BATCH) ivf.add(x.subarray(i * D, Math.min(N, i + BATCH) * D));
  });
  out['flatAdd'] = time(() => {
    const f = new faiss.IndexFlatL2(D);
    for (let i = 0; i < N; i += BATCH) f.add(x.subarray(i * D, Math.min(N, i + BATCH) * D));
  });
} else {
  const ivf = faiss.Index.fromFactory(D, factory, 1);
  let sample: number[] = [];
  out['toArray'] = time(() => {
    sample = toArray(0, TRAIN);
  });
  out['train'] = time(() => ivf.train(sample));
  let convert = 0;
  out['add'] = time(() => {
    for (let i = 0; i < N; i += BATCH) {
      const t0 = performance.now();
      const a = toArray(i, Math.min(BATCH, N - i));
      convert += performance.now() - t0;
      ivf.add(a);
    }
  });
  out['toArrayInAdd'] = convert / 1000;
  out['flatAdd'] = time(() => {
    const f = new faiss.IndexFlatL2(D);
    for (let i = 0; i < N; i += BATCH) f.add(toArray(i, Math.min(BATCH, N - i)));
  });
}
out['peakRssBytes'] = hwm();
process.stdout.write(`${JSON.stringify(out)}\n`);
