// Deterministic randomness for sampling (rebuild training samples, recall queries) and for
// test and benchmark data: the same seed gives the same numbers, so results reproduce.

/** Uniform [0, 1) from a 32-bit seed (mulberry32: tiny, fast, good enough for sampling). */
export function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `n` distinct positions in [0, total) drawn with `rnd`, ascending; all of them when n ≥ total. */
export function samplePositions(total: number, n: number, rnd: () => number): number[] {
  if (n >= total) return Array.from({ length: total }, (_, i) => i);
  if (n * 2 > total) {
    // Dense: a partial Fisher-Yates shuffle (total < 2n, so the array is small).
    const all = Array.from({ length: total }, (_, i) => i);
    for (let i = 0; i < n; i++) {
      const j = i + Math.floor(rnd() * (total - i));
      [all[i], all[j]] = [all[j] as number, all[i] as number];
    }
    return all.slice(0, n).sort((a, b) => a - b);
  }
  // Sparse: rejection sampling; every draw is new with probability > 1/2, the cap is a backstop.
  const picked = new Set<number>();
  for (let tries = 0; picked.size < n && tries < n * 64; tries++) picked.add(Math.floor(rnd() * total));
  return [...picked].sort((a, b) => a - b);
}
