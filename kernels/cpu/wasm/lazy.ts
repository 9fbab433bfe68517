/**
 * Process-wide WebAssembly instances made on first use, or never where the engine cannot run them.
 *
 * @module
 */

/**
 * Returns a getter of one shared instance: on the first call it validates `emit()`'s bytes and runs
 * `create()`; where WebAssembly, or a proposal the module uses (SIMD), is missing, or instantiating throws,
 * the getter returns undefined from then on, so callers take their TypeScript path.
 */
export function lazyWasmInstance<T>(emit: () => Uint8Array<ArrayBuffer>, create: () => T): () => T | undefined {
  let instance: T | null | undefined;
  return () => {
    if (instance === undefined) {
      instance = null;
      try {
        if (typeof WebAssembly === "object" && WebAssembly.validate(emit())) instance = create();
      } catch {
        instance = null;
      }
    }
    return instance ?? undefined;
  };
}
