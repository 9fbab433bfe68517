/**
 * Checkpoints: the safetensors format (`encodeSafetensors` / `decodeSafetensors`), and training checkpoints
 * holding the model, optimizer and RNG state, the step and the config (`saveCheckpoint` / `loadCheckpoint`,
 * written atomically, validated completely before any state is touched), plus `latestCheckpoint` for resuming.
 *
 * @example
 * ```ts
 * import { tensor, type Tensor } from "@moegrad/moegrad";
 * import { inspectCheckpoint, encodeCheckpoint } from "./mod.ts";
 * const state: Record<string, Tensor> = { w: tensor([[1, 2], [3, 4]]) };
 * const model = { stateDict: () => state, loadStateDict: (s: Record<string, Tensor>) => void Object.assign(state, s) };
 * const bytes = await encodeCheckpoint({ model, step: 5, config: { hidden: 2 } });
 * console.log(inspectCheckpoint(bytes).config); // { hidden: 2 }
 * ```
 *
 * @module
 */
export {
  compareCodePoints,
  type DecodedSafetensors,
  decodeSafetensors,
  encodeSafetensors,
  MAX_HEADER_BYTES,
  type ParsedSafetensors,
  parseSafetensors,
  safetensorsDType,
  SafetensorsError,
  type SafetensorsView,
  tensorFromView,
  typedArrayFromBytes,
} from "./safetensors.ts";
export {
  CHECKPOINT_FORMAT_VERSION,
  checkpointChecksum,
  type CheckpointFile,
  type CheckpointInfo,
  type CheckpointNaming,
  checkpointPath,
  decodeCheckpoint,
  type DecodeCheckpointOptions,
  encodeCheckpoint,
  type EncodeCheckpointOptions,
  inspectCheckpoint,
  type JsonValue,
  latestCheckpoint,
  listCheckpoints,
  loadCheckpoint,
  type LoadedCheckpoint,
  saveCheckpoint,
  type StatefulGenerator,
  type StatefulModel,
  type StatefulOptimizer,
} from "./checkpoint.ts";
export { CheckpointError } from "./errors.ts";
export { writeFileAtomic } from "../io/atomic.ts";
export { Crc32, crc32 } from "./crc32.ts";
