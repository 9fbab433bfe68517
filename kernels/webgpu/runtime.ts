/**
 * The WebGPU runtime under the `webgpu` backend: buffers (pooled by size), a pipeline cache keyed by shader
 * source, batched command encoding (many dispatches per compute pass, submitted in batches), a params arena
 * (one upload per batch instead of one per dispatch) and async-only readback.
 *
 * Nothing here waits for the GPU except {@link WebGpuRuntime.read}: ops only encode work.
 *
 * Binding convention of every kernel: `@binding(0)` is the u32 params array (read-only storage), then the
 * inputs (read-only storage) in order, then the outputs (read-write storage). The grid is 1-D in workgroups
 * and split over x and y when it exceeds the per-dimension limit; shaders recover the linear workgroup
 * index with `wgIndex(wid, nwg)` from {@link WGSL_PRELUDE}.
 *
 * @module
 */
import { allocArray, type DType, type TypedArray } from "../../core/dtype.ts";

/** A tensor's storage on the GPU. `bytes` is the allocation size (≥ 4, a multiple of 4). */
export interface GpuBuffer {
  /** The GPU buffer (STORAGE | COPY_SRC | COPY_DST). */
  readonly buffer: GPUBuffer;
  /** Allocation size in bytes. */
  readonly bytes: number;
}

/** The WGSL type that stores each dtype: bool is one u32 per element (0 or 1). */
export function wgslType(dtype: DType): "f32" | "i32" | "u32" {
  if (dtype === "f64") throw new Error("webgpu: f64 is not supported on WebGPU; use f32, or the cpu device for f64");
  return dtype === "f32" ? "f32" : dtype === "i32" ? "i32" : "u32";
}

/** Helpers every shader may use (prepended by the runtime). */
export const WGSL_PRELUDE = `
fn wgIndex(wid: vec3<u32>, nwg: vec3<u32>) -> u32 { return wid.y * nwg.x + wid.x; }
fn f32p(i: u32) -> f32 { return bitcast<f32>(params[i]); }
fn i32p(i: u32) -> i32 { return bitcast<i32>(params[i]); }
`;

/** What one kernel launch needs. */
export interface DispatchSpec {
  /** WGSL source without the params/input/output declarations (the runtime adds them). */
  readonly shader: string;
  /** Element types of the inputs' bindings, in order (e.g. ["f32", "i32"]). */
  readonly inputTypes: readonly string[];
  /** Element types of the outputs' bindings. */
  readonly outputTypes: readonly string[];
  /** Input buffers (bound as `in0`, `in1`, …). */
  readonly inputs: readonly GpuBuffer[];
  /** Output buffers (bound as `out0`, `out1`, …). */
  readonly outputs: readonly GpuBuffer[];
  /** u32 words for the `params` array (encode floats with {@link f32Bits}, ints with `>>> 0`). */
  readonly params: readonly number[];
  /** Number of workgroups (1-D; split over x/y when needed). Zero skips the launch. */
  readonly workgroups: number;
}

const f32View = new Float32Array(1);
const u32View = new Uint32Array(f32View.buffer);

/** The bit pattern of `x` as an f32, for passing floats through the u32 params array. */
export function f32Bits(x: number): number {
  f32View[0] = x;
  return u32View[0];
}

/** Counters for tests and benchmarks. */
export interface RuntimeStats {
  /** Kernel launches encoded so far. */
  dispatches: number;
  /** Command buffers submitted so far. */
  submits: number;
  /** Pipelines compiled (cache misses). */
  pipelines: number;
  /** Buffers currently allocated on the device (live + pooled). */
  gpuBuffers: number;
  /** Bytes currently allocated on the device (live + pooled). */
  gpuBytes: number;
  /** Bytes sitting in the pool, ready for reuse. */
  pooledBytes: number;
}

const MAX_DISPATCHES_PER_SUBMIT = 256;
const PARAMS_ARENA_BYTES = 1 << 18;
/** Pooled bytes above which freed buffers are destroyed instead of kept. */
const POOL_LIMIT_BYTES = 512 * 1024 * 1024;

/** One GPU device with its caches and the command batch being recorded. */
export class WebGpuRuntime {
  /** The device. */
  readonly device: GPUDevice;
  /** The adapter's description (shown at start-up and in errors). */
  readonly adapterInfo: GPUAdapterInfo;
  /** Whether the adapter is a software rasterizer (llvmpipe, lavapipe, SwiftShader…). */
  readonly isSoftware: boolean;
  /** Counters (see {@link RuntimeStats}). */
  readonly stats: RuntimeStats = {
    dispatches: 0,
    submits: 0,
    pipelines: 0,
    gpuBuffers: 0,
    gpuBytes: 0,
    pooledBytes: 0,
  };

  #pipelines = new Map<string, GPUComputePipeline>();
  #layouts = new Map<string, GPUBindGroupLayout>();
  #pool = new Map<number, GPUBuffer[]>();
  #readPool = new Map<number, GPUBuffer[]>();
  #encoder: GPUCommandEncoder | null = null;
  #pass: GPUComputePassEncoder | null = null;
  #pending = 0;
  #params: GPUBuffer;
  #arena = new Uint32Array(PARAMS_ARENA_BYTES / 4);
  #arenaUsed = 0; // in u32 words
  #align: number; // params offset alignment, in u32 words
  #lost: string | null = null;
  #error: string | null = null;
  readonly #maxGrid: number;

  /** Wraps a device obtained from `adapter.requestDevice()`. */
  constructor(device: GPUDevice, adapterInfo: GPUAdapterInfo, isSoftware: boolean) {
    this.device = device;
    this.adapterInfo = adapterInfo;
    this.isSoftware = isSoftware;
    this.#maxGrid = device.limits.maxComputeWorkgroupsPerDimension;
    this.#align = Math.max(device.limits.minStorageBufferOffsetAlignment, 16) / 4;
    this.#params = device.createBuffer({
      size: PARAMS_ARENA_BYTES,
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST,
    });
    device.lost.then((info) => {
      this.#lost = `${info.reason}: ${info.message}`;
    });
    device.addEventListener("uncapturederror", (e) => {
      this.#error ??= (e as GPUUncapturedErrorEvent).error.message;
    });
  }

  /** The largest buffer one binding may cover (kernels split work beyond it). */
  get maxBindingBytes(): number {
    return this.device.limits.maxStorageBufferBindingSize;
  }

  #check(): void {
    if (this.#lost) {
      throw new Error(
        `webgpu: the device was lost (${this.#lost}); its tensors are gone. Call initWebGpu() again, or use the cpu device`,
      );
    }
    if (this.#error) {
      const msg = this.#error;
      this.#error = null;
      throw new Error(`webgpu: a GPU command failed validation: ${msg}`);
    }
  }

  // ---- memory ---------------------------------------------------------------------------------------

  /** A buffer of at least `bytes` (rounded up to 4), reused from the pool when one of that size is free. */
  alloc(bytes: number): GpuBuffer {
    this.#check();
    const size = Math.max(4, Math.ceil(bytes / 4) * 4);
    if (size > this.maxBindingBytes) {
      throw new Error(
        `webgpu: a ${size}-byte tensor exceeds this adapter's maxStorageBufferBindingSize (${this.maxBindingBytes})`,
      );
    }
    const reused = this.#pool.get(size)?.pop();
    if (reused) {
      this.stats.pooledBytes -= size;
      return { buffer: reused, bytes: size };
    }
    const buffer = this.device.createBuffer({
      size,
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
    });
    this.stats.gpuBuffers++;
    this.stats.gpuBytes += size;
    return { buffer, bytes: size };
  }

  /**
   * A new buffer holding `data`. Written through a mapping at creation, never with `queue.writeBuffer` into
   * a pooled buffer: that write would land before commands already encoded but not yet submitted.
   */
  upload(data: ArrayBufferView): GpuBuffer {
    this.#check();
    const size = Math.max(4, Math.ceil(data.byteLength / 4) * 4);
    const buffer = this.device.createBuffer({
      size,
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
      mappedAtCreation: true,
    });
    new Uint8Array(buffer.getMappedRange()).set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    buffer.unmap();
    this.stats.gpuBuffers++;
    this.stats.gpuBytes += size;
    return { buffer, bytes: size };
  }

  /** Returns a buffer to the pool (safe: later commands that reuse it are ordered after earlier readers). */
  free(buf: GpuBuffer): void {
    if (this.stats.pooledBytes + buf.bytes > POOL_LIMIT_BYTES) {
      this.#destroy(buf.buffer, buf.bytes);
      return;
    }
    let list = this.#pool.get(buf.bytes);
    if (!list) this.#pool.set(buf.bytes, list = []);
    list.push(buf.buffer);
    this.stats.pooledBytes += buf.bytes;
  }

  #destroy(buffer: GPUBuffer, bytes: number): void {
    this.flush(); // pending commands may still use it
    buffer.destroy();
    this.stats.gpuBuffers--;
    this.stats.gpuBytes -= bytes;
  }

  /** Destroys every pooled buffer (after the pending work is submitted). */
  releasePool(): void {
    this.flush();
    for (const [bytes, list] of this.#pool) {
      for (const b of list) {
        b.destroy();
        this.stats.gpuBuffers--;
        this.stats.gpuBytes -= bytes;
      }
    }
    this.#pool.clear();
    this.stats.pooledBytes = 0;
  }

  /** Copies `size` elements of `dtype` back to the host. The only place that waits for the GPU. */
  async read(buf: GpuBuffer, dtype: DType, size: number): Promise<TypedArray> {
    this.#check();
    const elemBytes = dtype === "f64" ? 8 : 4;
    const bytes = Math.max(4, size * elemBytes);
    const staging = this.#readPool.get(bytes)?.pop() ??
      this.device.createBuffer({ size: bytes, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    this.#endPass();
    this.#encoderOrNew().copyBufferToBuffer(buf.buffer, 0, staging, 0, bytes);
    this.flush();
    await staging.mapAsync(GPUMapMode.READ);
    this.#check();
    const raw = staging.getMappedRange().slice(0, size * elemBytes);
    staging.unmap();
    let list = this.#readPool.get(bytes);
    if (!list) this.#readPool.set(bytes, list = []);
    list.push(staging);
    if (dtype === "bool") {
      const out = allocArray("bool", size);
      out.set(new Uint32Array(raw));
      return out;
    }
    return dtype === "f32" ? new Float32Array(raw) : new Int32Array(raw);
  }

  // ---- dispatch -------------------------------------------------------------------------------------

  #layout(nIn: number, nOut: number): GPUBindGroupLayout {
    const key = `${nIn}:${nOut}`;
    let layout = this.#layouts.get(key);
    if (!layout) {
      const entries: GPUBindGroupLayoutEntry[] = [];
      for (let i = 0; i <= nIn + nOut; i++) {
        entries.push({
          binding: i,
          visibility: GPUShaderStage.COMPUTE,
          buffer: { type: i === 0 || i <= nIn ? "read-only-storage" : "storage" },
        });
      }
      layout = this.device.createBindGroupLayout({ entries });
      this.#layouts.set(key, layout);
    }
    return layout;
  }

  #pipeline(spec: DispatchSpec): GPUComputePipeline {
    const decls = [
      "@group(0) @binding(0) var<storage, read> params: array<u32>;",
      ...spec.inputTypes.map((t, i) => `@group(0) @binding(${i + 1}) var<storage, read> in${i}: array<${t}>;`),
      ...spec.outputTypes.map((t, i) =>
        `@group(0) @binding(${i + 1 + spec.inputTypes.length}) var<storage, read_write> out${i}: array<${t}>;`
      ),
    ].join("\n");
    const code = `${decls}\n${WGSL_PRELUDE}\n${spec.shader}`;
    let pipeline = this.#pipelines.get(code);
    if (!pipeline) {
      const module = this.device.createShaderModule({ code });
      pipeline = this.device.createComputePipeline({
        layout: this.device.createPipelineLayout({
          bindGroupLayouts: [this.#layout(spec.inputTypes.length, spec.outputTypes.length)],
        }),
        compute: { module, entryPoint: "main" },
      });
      this.#pipelines.set(code, pipeline);
      this.stats.pipelines++;
    }
    return pipeline;
  }

  #encoderOrNew(): GPUCommandEncoder {
    return this.#encoder ??= this.device.createCommandEncoder();
  }

  #endPass(): void {
    this.#pass?.end();
    this.#pass = null;
  }

  /** Encodes one kernel launch into the current batch (submitting the batch when it is full). */
  dispatch(spec: DispatchSpec): void {
    this.#check();
    if (spec.workgroups === 0) return;
    const words = Math.max(1, spec.params.length);
    const aligned = Math.ceil(words / this.#align) * this.#align;
    if (this.#arenaUsed + aligned > this.#arena.length || this.#pending >= MAX_DISPATCHES_PER_SUBMIT) this.flush();
    const offset = this.#arenaUsed;
    for (let i = 0; i < spec.params.length; i++) this.#arena[offset + i] = spec.params[i] >>> 0;
    this.#arenaUsed += aligned;

    const pipeline = this.#pipeline(spec);
    const entries: GPUBindGroupEntry[] = [{
      binding: 0,
      resource: { buffer: this.#params, offset: offset * 4, size: words * 4 },
    }];
    [...spec.inputs, ...spec.outputs].forEach((b, i) =>
      entries.push({ binding: i + 1, resource: { buffer: b.buffer } })
    );
    const bindGroup = this.device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries });
    this.#pass ??= this.#encoderOrNew().beginComputePass();
    this.#pass.setPipeline(pipeline);
    this.#pass.setBindGroup(0, bindGroup);
    const x = Math.min(spec.workgroups, this.#maxGrid);
    const y = Math.ceil(spec.workgroups / x);
    if (y > this.#maxGrid) throw new Error(`webgpu: ${spec.workgroups} workgroups exceed the 2-D grid limit`);
    this.#pass.dispatchWorkgroups(x, y);
    this.#pending++;
    this.stats.dispatches++;
  }

  /** Submits everything encoded so far (with this batch's params). Does not wait. */
  flush(): void {
    this.#endPass();
    if (!this.#encoder) return;
    if (this.#arenaUsed > 0) this.device.queue.writeBuffer(this.#params, 0, this.#arena, 0, this.#arenaUsed);
    this.device.queue.submit([this.#encoder.finish()]);
    this.#encoder = null;
    this.#pending = 0;
    this.#arenaUsed = 0;
    this.stats.submits++;
  }

  /** Submits pending work and waits until the GPU has finished it. */
  async sync(): Promise<void> {
    this.flush();
    await this.device.queue.onSubmittedWorkDone();
    this.#check();
  }
}
