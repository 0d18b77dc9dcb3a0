/**
 * Small seeded PRNG (mulberry32) and a string hash, so fault injection and webhook shuffling are
 * reproducible from `--seed`. Not for anything security-related.
 */

/** Returns a generator of floats in [0, 1) fully determined by `seed` (mulberry32). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

/** 32-bit FNV-1a of a string's UTF-16 code units: cheap, stable across runs. */
export function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/**
 * A generator for one submission, keyed by (seed, reference, try number) rather than drawn from
 * one shared stream: under concurrency the arrival order of requests varies from run to run, and
 * a shared stream would then hand the faults to different references. Keyed draws make the same
 * seed fault the same references on every run, while a retry of a reference (next try number)
 * still gets a fresh draw.
 */
export function submissionRandom(seed: number, reference: string, tryNumber: number): () => number {
  const mixed =
    fnv1a(reference) ^ Math.imul(seed | 0, 0x9e3779b1) ^ Math.imul(tryNumber + 1, 0x85ebca6b);
  return mulberry32(mixed);
}

/** Fisher–Yates shuffle in place with the given generator; returns the array. */
export function shuffleInPlace<T>(items: T[], random: () => number): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    const tmp = items[i] as T;
    items[i] = items[j] as T;
    items[j] = tmp;
  }
  return items;
}
