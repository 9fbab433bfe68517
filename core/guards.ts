/**
 * Small type guards shared by the parsers of untrusted JSON (checkpoint headers, experiment configs).
 *
 * @module
 */

/** Whether `v` is an object that is neither `null` nor an array (a JSON object, once parsed). */
export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
