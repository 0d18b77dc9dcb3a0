/**
 * The references a batch file has claimed so far, held compactly so that validating a
 * million-row file does not hold a million strings: each key is kept as a 64-bit hash (two
 * independent 32-bit halves) in typed arrays with open addressing, with the non-zero number the
 * caller attached to it (the validator stores the claiming line, negated for a claim by line
 * number). About 12 bytes per slot at a load factor of at most one half, so ~25 MB for 1,000,000
 * references, against ~100 MB for a `Map<string, number>`.
 *
 * Two distinct keys with the same 64-bit hash would be reported as a duplicate (about 3 in 10^8
 * for a file of 1,000,000 references): the row is refused, never paid twice, and the error names
 * both lines so a person can see it. Pure and synchronous.
 */

const EMPTY = 0;

/** Two 32-bit hashes of the UTF-16 code units (cyrb53's mixing, both halves kept). */
function hash64(key: string): [number, number] {
  let h1 = 0xdeadbeef;
  let h2 = 0x41c6ce57;
  for (let i = 0; i < key.length; i++) {
    const ch = key.charCodeAt(i);
    h1 = Math.imul(h1 ^ ch, 2654435761);
    h2 = Math.imul(h2 ^ ch, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507);
  h1 ^= Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507);
  h2 ^= Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return [h1 >>> 0, h2 >>> 0];
}

export class ClaimTable {
  #lo: Uint32Array;
  #hi: Uint32Array;
  #values: Int32Array;
  #size = 0;

  constructor(initialCapacity = 1024) {
    let capacity = 16;
    while (capacity < initialCapacity) capacity *= 2;
    this.#lo = new Uint32Array(capacity);
    this.#hi = new Uint32Array(capacity);
    this.#values = new Int32Array(capacity);
  }

  get size(): number {
    return this.#size;
  }

  /**
   * Claims `key` for `value` (a non-zero 32-bit integer). Returns the value of an earlier claim
   * of the same key and leaves it in place, or `undefined` when this claim is the first.
   */
  claim(key: string, value: number): number | undefined {
    if (value === EMPTY || !Number.isInteger(value) || Math.abs(value) > 0x7fffffff) {
      throw new RangeError(`claim value must be a non-zero 32-bit integer, got ${value}`);
    }
    const [lo, hi] = hash64(key);
    const previous = this.#find(lo, hi);
    if (previous !== undefined) return previous;
    if ((this.#size + 1) * 2 > this.#values.length) this.#grow();
    this.#insert(lo, hi, value);
    this.#size++;
    return undefined;
  }

  #find(lo: number, hi: number): number | undefined {
    const mask = this.#values.length - 1;
    for (let i = lo & mask; ; i = (i + 1) & mask) {
      const v = this.#values[i] ?? EMPTY;
      if (v === EMPTY) return undefined;
      if (this.#lo[i] === lo && this.#hi[i] === hi) return v;
    }
  }

  #insert(lo: number, hi: number, value: number): void {
    const mask = this.#values.length - 1;
    let i = lo & mask;
    while ((this.#values[i] ?? EMPTY) !== EMPTY) i = (i + 1) & mask;
    this.#lo[i] = lo;
    this.#hi[i] = hi;
    this.#values[i] = value;
  }

  #grow(): void {
    const lo = this.#lo;
    const hi = this.#hi;
    const values = this.#values;
    const capacity = values.length * 2;
    this.#lo = new Uint32Array(capacity);
    this.#hi = new Uint32Array(capacity);
    this.#values = new Int32Array(capacity);
    for (let i = 0; i < values.length; i++) {
      const v = values[i] ?? EMPTY;
      if (v !== EMPTY) this.#insert(lo[i] ?? 0, hi[i] ?? 0, v);
    }
  }
}
