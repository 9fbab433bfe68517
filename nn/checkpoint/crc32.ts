/**
 * CRC-32 (IEEE 802.3, the checksum of zip, gzip and PNG): reflected polynomial 0xEDB88320, initial value and
 * final XOR 0xFFFFFFFF. Checkpoints store one over their whole content so that a corrupted byte anywhere,
 * tensor data included, is detected before any state is touched. It detects every single-bit error and every
 * burst of up to 32 bits; it is not a cryptographic hash.
 *
 * @module
 */

const TABLES: Uint32Array[] = (() => {
  // Slicing-by-4: table 0 is the classic byte table; table k advances a byte that sits k positions earlier.
  const t = [new Uint32Array(256), new Uint32Array(256), new Uint32Array(256), new Uint32Array(256)];
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[0][n] = c >>> 0;
  }
  for (let n = 0; n < 256; n++) {
    for (let k = 1; k < 4; k++) t[k][n] = (t[0][t[k - 1][n] & 0xff] ^ (t[k - 1][n] >>> 8)) >>> 0;
  }
  return t;
})();

/**
 * An incremental CRC-32: feed the bytes in pieces with {@link Crc32.update}, read the checksum with
 * {@link Crc32.digest}.
 *
 * @example
 * ```ts
 * import { Crc32 } from "./crc32.ts";
 * const crc = new Crc32().update(new TextEncoder().encode("123456789"));
 * console.log(crc.digest().toString(16)); // "cbf43926", the standard check value
 * ```
 */
export class Crc32 {
  #state = 0xffffffff;

  /** Feeds `bytes` into the checksum. Returns `this`. */
  update(bytes: Uint8Array): this {
    const [t0, t1, t2, t3] = TABLES;
    let c = this.#state;
    let i = 0;
    const n = bytes.length;
    for (; i + 4 <= n; i += 4) {
      c ^= bytes[i] | (bytes[i + 1] << 8) | (bytes[i + 2] << 16) | (bytes[i + 3] << 24);
      c = t3[c & 0xff] ^ t2[(c >>> 8) & 0xff] ^ t1[(c >>> 16) & 0xff] ^ t0[c >>> 24];
    }
    for (; i < n; i++) c = t0[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
    this.#state = c;
    return this;
  }

  /** The CRC-32 of everything fed so far, as an unsigned 32-bit integer. */
  digest(): number {
    return (this.#state ^ 0xffffffff) >>> 0;
  }
}

/** The CRC-32 of `bytes` in one call. */
export function crc32(bytes: Uint8Array): number {
  return new Crc32().update(bytes).digest();
}
