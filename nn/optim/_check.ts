/**
 * Argument checks shared by the optimizers, `clipGradNorm` and the learning-rate schedules. Every message
 * starts with the owner's name (`"SGD"`, `"warmupCosineLr"`, …) and names the option and the value.
 *
 * @module
 */

/** Bounds of {@link checkNumber}. */
export interface NumberBounds {
  /** Inclusive lower bound. */
  min?: number;
  /** Exclusive lower bound. */
  above?: number;
  /** Exclusive upper bound. */
  below?: number;
  /** Require an integer. */
  integer?: boolean;
  /** Allow +Infinity (default false: the value must be finite). */
  allowInfinity?: boolean;
}

function describe(b: NumberBounds): string {
  const parts: string[] = [];
  if (b.integer) parts.push("an integer");
  else parts.push(b.allowInfinity ? "a number" : "a finite number");
  if (b.min !== undefined && b.below !== undefined) {
    parts.push(`in [${b.min}, ${b.below})`);
    return parts.join(" ");
  }
  if (b.min !== undefined) parts.push(`≥ ${b.min}`);
  if (b.above !== undefined) parts.push(`> ${b.above}`);
  if (b.below !== undefined) parts.push(`< ${b.below}`);
  return parts.join(" ");
}

/** Returns `value` if it is a number within `bounds`, else throws a RangeError naming `owner` and `name`. */
export function checkNumber(owner: string, name: string, value: unknown, bounds: NumberBounds = {}): number {
  const ok = typeof value === "number" && !Number.isNaN(value) &&
    (Number.isFinite(value) || (bounds.allowInfinity === true && value === Infinity)) &&
    (!bounds.integer || Number.isInteger(value)) &&
    (bounds.min === undefined || value >= bounds.min) &&
    (bounds.above === undefined || value > bounds.above) &&
    (bounds.below === undefined || value < bounds.below);
  if (!ok) {
    const shown = typeof value === "string" ? JSON.stringify(value) : String(value);
    throw new RangeError(`${owner}: ${name} must be ${describe(bounds)}, got ${shown}`);
  }
  return value as number;
}

/** Returns `value` if it is a boolean, else throws a TypeError naming `owner` and `name`. */
export function checkBoolean(owner: string, name: string, value: unknown): boolean {
  if (typeof value !== "boolean") throw new TypeError(`${owner}: ${name} must be a boolean, got ${String(value)}`);
  return value;
}

/** Throws unless `options` is undefined or a plain object whose keys are all in `known`. */
export function checkOptionKeys(owner: string, options: unknown, known: readonly string[]): void {
  if (options === undefined) return;
  if (options === null || typeof options !== "object" || Array.isArray(options)) {
    throw new TypeError(`${owner}: options must be an object, got ${options === null ? "null" : typeof options}`);
  }
  const unknown = Object.keys(options).filter((k) => !known.includes(k));
  if (unknown.length > 0) {
    throw new TypeError(
      `${owner}: unknown option${unknown.length > 1 ? "s" : ""} ${unknown.map((k) => `"${k}"`).join(", ")} ` +
        `(known: ${known.join(", ")})`,
    );
  }
}
