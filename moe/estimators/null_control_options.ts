/**
 * The zod schemas of the null-control routers' options (`null_controls.ts`), apart from the classes so that the
 * public API shows plain interfaces; checked at compile time to accept exactly those interfaces.
 *
 * @module
 */
import { z } from "../../deps.ts";
import { allowing, type Same } from "./options.ts";
import type { HashRoutingOptions, RandomRoutingOptions } from "./null_controls.ts";

const TOP_K = allowing(
  z.int().min(1).default(1).describe("Experts per token (integer ≥ 1, ≤ E; default 1)."),
  "an integer ≥ 1",
);

/** The options of `random` (`RandomRoutingEstimator`). */
export const randomRoutingOptionsSchema = z.strictObject({
  /** Experts per token. */
  topK: TOP_K,
}).describe("Options of the `random` null control (uniformly random experts, redrawn at every forward).");

/** The options of `hash` (`HashEstimator`). */
export const hashRoutingOptionsSchema = z.strictObject({
  /** Experts per token. */
  topK: TOP_K,
  /** Seed of the hash (another seed: another fixed assignment). */
  seed: allowing(
    z.int().min(0).max(0xffffffff).default(0).describe("Seed of the hash (a 32-bit unsigned integer; default 0)."),
    "an integer in [0, 2^32)",
  ),
  /** Token ids must be below this: the size of the device lookup table. */
  vocabSize: allowing(
    z.int().min(1).max(1 << 24).default(1 << 16).describe(
      "Token ids must be < vocabSize (the rows of the lookup table; default 65536).",
    ),
    "an integer in [1, 2^24]",
  ),
}).describe("Options of the `hash` null control (Hash Layers: experts a fixed hash of the token id).");

// The public option interfaces must accept exactly what the schemas accept.
const _optionInterfacesMatchSchemas: [
  Same<RandomRoutingOptions, z.input<typeof randomRoutingOptionsSchema>>,
  Same<HashRoutingOptions, z.input<typeof hashRoutingOptionsSchema>>,
] = [true, true];
void _optionInterfacesMatchSchemas;
