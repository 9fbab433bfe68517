/**
 * A tiny WebAssembly binary emitter: just enough to build the SIMD kernels (the matmul, the Adam update) at
 * run time from TypeScript, so the repository ships no binary and needs no external toolchain.
 *
 * It covers one module with an exported (or imported, possibly shared) memory, functions with typed locals,
 * structured control flow (block/loop/if, br/br_if, call), i32 arithmetic and comparisons, f32 scalar
 * loads/stores, the handful of 128-bit SIMD instructions the kernels use (including relaxed SIMD's
 * `f32x4.relaxed_madd`) and the few atomics its thread pool needs. Opcodes follow the WebAssembly core
 * specification (binary format, §5), the fixed-width and relaxed SIMD proposals (prefix 0xfd) and the
 * threads proposal (prefix 0xfe).
 *
 * @module
 */

/** Value types (binary encoding). */
export const ValType = {
  i32: 0x7f,
  i64: 0x7e,
  f32: 0x7d,
  f64: 0x7c,
  v128: 0x7b,
} as const;
/** One of {@link ValType}'s codes. */
export type ValType = typeof ValType[keyof typeof ValType];

/** Unsigned LEB128 of a non-negative integer below 2^32. */
export function uleb128(value: number): number[] {
  if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) throw new RangeError(`uleb128: ${value}`);
  const out: number[] = [];
  let v = value;
  do {
    let byte = v & 0x7f;
    v = Math.floor(v / 128);
    if (v !== 0) byte |= 0x80;
    out.push(byte);
  } while (v !== 0);
  return out;
}

/** Signed LEB128 of an integer in the i32 range. */
export function sleb128(value: number): number[] {
  if (!Number.isInteger(value) || value < -0x80000000 || value > 0x7fffffff) {
    throw new RangeError(`sleb128: ${value}`);
  }
  const out: number[] = [];
  let v = value | 0;
  for (;;) {
    const byte = v & 0x7f;
    v >>= 7;
    const done = (v === 0 && (byte & 0x40) === 0) || (v === -1 && (byte & 0x40) !== 0);
    out.push(done ? byte : byte | 0x80);
    if (done) return out;
  }
}

/** A UTF-8 name prefixed with its byte length. */
function encodeName(name: string): number[] {
  const bytes = new TextEncoder().encode(name);
  return [...uleb128(bytes.length), ...bytes];
}

/** A vector: element count followed by the concatenated elements. */
function encodeVector(items: number[][]): number[] {
  return [...uleb128(items.length), ...items.flat()];
}

/** Single-byte opcodes used by {@link FunctionBuilder}. */
const Op = {
  block: 0x02,
  loop: 0x03,
  if: 0x04,
  else: 0x05,
  end: 0x0b,
  br: 0x0c,
  brIf: 0x0d,
  return: 0x0f,
  call: 0x10,
  drop: 0x1a,
  select: 0x1b,
  localGet: 0x20,
  localSet: 0x21,
  localTee: 0x22,
  i32Load: 0x28,
  f32Load: 0x2a,
  i32Store: 0x36,
  f32Store: 0x38,
  i32Const: 0x41,
  i64Const: 0x42,
  i32Eqz: 0x45,
  i32Eq: 0x46,
  i32Ne: 0x47,
  i32LtS: 0x48,
  i32LtU: 0x49,
  i32GtS: 0x4a,
  i32GtU: 0x4b,
  i32LeS: 0x4c,
  i32LeU: 0x4d,
  i32GeS: 0x4e,
  i32GeU: 0x4f,
  i32Add: 0x6a,
  i32Sub: 0x6b,
  i32Mul: 0x6c,
  i32DivU: 0x6e,
  i32RemU: 0x70,
  i32And: 0x71,
  i32Shl: 0x74,
  i32ShrU: 0x76,
  f32Add: 0x92,
  f32Mul: 0x94,
} as const;

/** Opcodes after the SIMD prefix 0xfd (encoded as u32 LEB128). */
const SimdOp = {
  v128Load: 0x00,
  v128Load32Splat: 0x09,
  v128Load64Zero: 0x5d,
  v128Store: 0x0b,
  v128Const: 0x0c,
  f32x4Splat: 0x13,
  f32x4ExtractLane: 0x1f,
  f32x4Sqrt: 0xe3,
  f32x4Add: 0xe4,
  f32x4Sub: 0xe5,
  f32x4Mul: 0xe6,
  f32x4Div: 0xe7,
  f64x2PromoteLowF32x4: 0x5f,
  f64x2Add: 0xf0,
  i32x4ExtractLane: 0x1b,
  v128Load64Lane: 0x57,
  v128Store64Lane: 0x5b,
  i8x16Shuffle: 0x0d,
  /** Relaxed SIMD: a·b + c, fused or not as the hardware prefers (deterministic on one machine). */
  f32x4RelaxedMadd: 0x105,
} as const;
const SIMD_PREFIX = 0xfd;

/**
 * SIMD instructions without immediates, by name (opcodes after the 0xfd prefix, from the fixed-width SIMD
 * proposal): the elementwise kernels (`elementwise.ts`) emit them through {@link FunctionBuilder.simdOp}.
 */
export const SIMD_OPS = {
  "i8x16.ne": 0x24,
  "i32x4.eq": 0x37,
  "f32x4.eq": 0x41,
  "f32x4.ne": 0x42,
  "f32x4.lt": 0x43,
  "f32x4.gt": 0x44,
  "f32x4.le": 0x45,
  "f32x4.ge": 0x46,
  "v128.not": 0x4d,
  "v128.and": 0x4e,
  "v128.or": 0x50,
  "v128.bitselect": 0x52,
  "i16x8.extend_low_i8x16_s": 0x87,
  "i32x4.extend_low_i16x8_s": 0xa7,
  "f32x4.abs": 0xe0,
  "f32x4.neg": 0xe1,
  "f32x4.sqrt": 0xe3,
  "f32x4.add": 0xe4,
  "f32x4.sub": 0xe5,
  "f32x4.mul": 0xe6,
  "f32x4.div": 0xe7,
  // f64x2 lanes and the integer/conversion ops the transcendental kernels use (`transcendental.ts`).
  "i32x4.shl": 0xab,
  "i32x4.shr_s": 0xac,
  "i32x4.add": 0xae,
  "i32x4.sub": 0xb1,
  "i32x4.mul": 0xb5,
  "i64x2.extend_low_i32x4_s": 0xc7,
  "i64x2.shl": 0xcb,
  "f64x2.eq": 0x47,
  "f64x2.ne": 0x48,
  "f64x2.lt": 0x49,
  "f64x2.gt": 0x4a,
  "f64x2.le": 0x4b,
  "f64x2.ge": 0x4c,
  "f64x2.trunc": 0x7a,
  "f64x2.abs": 0xec,
  "f64x2.neg": 0xed,
  "f64x2.sqrt": 0xef,
  "f64x2.add": 0xf0,
  "f64x2.sub": 0xf1,
  "f64x2.mul": 0xf2,
  "f64x2.div": 0xf3,
  "f64x2.pmin": 0xf6,
  "f64x2.pmax": 0xf7,
  "i32x4.trunc_sat_f64x2_s_zero": 0xfc,
  "f32x4.demote_f64x2_zero": 0x5e,
  "f64x2.promote_low_f32x4": 0x5f,
} as const;
/** The name of an instruction of {@link SIMD_OPS}. */
export type SimdOpName = keyof typeof SIMD_OPS;

/** SIMD loads that take a memory argument, by name (see {@link FunctionBuilder.simdLoad}). */
export const SIMD_LOADS = {
  "v128.load8_splat": 0x07,
  "v128.load32_splat": 0x09,
  "v128.load32_zero": 0x5c,
  "v128.load16_splat": 0x08,
  "v128.load64_zero": 0x5d,
  "v128.load64_splat": 0x0a,
} as const;
/** The name of a load of {@link SIMD_LOADS}. */
export type SimdLoadName = keyof typeof SIMD_LOADS;

/** Opcodes after the threads prefix 0xfe (atomic accesses to shared memory). */
const AtomicOp = {
  notify: 0x00,
  wait32: 0x01,
  i32Load: 0x10,
  i32Store: 0x17,
  i32RmwAdd: 0x1e,
  i32RmwCmpxchg: 0x48,
} as const;
const ATOMIC_PREFIX = 0xfe;
/** Block type "no result". */
const EMPTY_BLOCK = 0x40;

/** A local variable (or parameter) index, typed for readability only. */
export type Local = number;

/**
 * Builds one function body. Parameters are locals 0..params-1; {@link local} declares more. Instruction
 * methods append bytes and return `this`, so code reads as a flat instruction list.
 */
export class FunctionBuilder {
  readonly params: readonly ValType[];
  readonly results: readonly ValType[];
  /** Index of this function in its module (what {@link FunctionBuilder.call} takes). */
  readonly index: number;
  private readonly locals: ValType[] = [];
  private code: number[] = [];
  /** While {@link FunctionBuilder.interleaved} captures a body: the code offsets where its statements end. */
  private statementEnds: number[] | null = null;
  /** Open structured blocks, so `end` mismatches are caught at build time. */
  private depth = 0;

  constructor(params: readonly ValType[], results: readonly ValType[] = [], index = 0) {
    this.params = params;
    this.results = results;
    this.index = index;
  }

  /** Declares a new local of type `type` and returns its index. */
  local(type: ValType): Local {
    this.locals.push(type);
    return this.params.length + this.locals.length - 1;
  }

  private op(...bytes: number[]): this {
    for (const b of bytes) this.code.push(b);
    return this;
  }
  private simd(op: number, ...imm: number[]): this {
    return this.op(SIMD_PREFIX, ...uleb128(op), ...imm);
  }
  private memarg(alignLog2: number, offset: number): number[] {
    return [...uleb128(alignLog2), ...uleb128(offset)];
  }

  // Control flow. `body` callbacks keep nesting visible in the emitting code.
  /** `block … end`; a `br` to it jumps past the end. */
  block(body: () => void): this {
    this.op(Op.block, EMPTY_BLOCK);
    this.depth++;
    body();
    return this.end();
  }
  /** `loop … end`; a `br` to it jumps back to the start. */
  loop(body: () => void): this {
    this.op(Op.loop, EMPTY_BLOCK);
    this.depth++;
    body();
    return this.end();
  }
  /** `if … (else …) end` on the i32 on the stack. */
  if(then: () => void, otherwise?: () => void): this {
    this.op(Op.if, EMPTY_BLOCK);
    this.depth++;
    then();
    if (otherwise) {
      this.op(Op.else);
      otherwise();
    }
    return this.end();
  }
  private end(): this {
    if (this.depth === 0) throw new Error("end without an open block");
    this.depth--;
    return this.op(Op.end);
  }
  /** Branch to the `label`-th enclosing block (0 = innermost). */
  br(label: number): this {
    return this.op(Op.br, ...uleb128(label));
  }
  /** Branch to the `label`-th enclosing block if the i32 on the stack is non-zero. */
  brIf(label: number): this {
    return this.op(Op.brIf, ...uleb128(label));
  }
  return(): this {
    return this.op(Op.return);
  }
  /** Calls the function with module index `index` (its arguments on the stack). */
  call(index: number): this {
    return this.op(Op.call, ...uleb128(index));
  }
  drop(): this {
    return this.op(Op.drop);
  }
  /** `select`: [a, b, cond] → cond ? a : b. */
  select(): this {
    return this.op(Op.select);
  }

  /**
   * Emits `bodies` — straight-line code on disjoint locals — with their statements interleaved round-robin:
   * the first statement of every body, then the second of every body, and so on. A statement ends at each
   * `local.set`, which inside the bodies must leave the operand stack empty (the callers' code is written
   * that way: every value is computed from `local.get`s and set into a local); each body's statements keep their
   * order, and code after its last `set` (a store) is its last statement. Independent dependency chains side by side let the CPU
   * overlap their latencies; the values computed are the same in any such order.
   */
  interleaved(bodies: readonly (() => void)[]): this {
    if (this.statementEnds) throw new Error("interleaved bodies do not nest");
    const saved = this.code, depth = this.depth, parts: number[][][] = [];
    try {
      for (const body of bodies) {
        this.code = [];
        this.statementEnds = [];
        body();
        if (this.depth !== depth) throw new Error("an interleaved body must not open blocks");
        const cuts = [0, ...this.statementEnds];
        if (cuts[cuts.length - 1] !== this.code.length) cuts.push(this.code.length);
        parts.push(cuts.slice(1).map((end, k) => this.code.slice(cuts[k], end)));
      }
    } finally {
      this.code = saved;
      this.statementEnds = null;
    }
    const rounds = Math.max(0, ...parts.map((p) => p.length));
    for (let r = 0; r < rounds; r++) for (const p of parts) if (r < p.length) this.op(...p[r]);
    return this;
  }

  // Locals.
  get(l: Local): this {
    return this.op(Op.localGet, ...uleb128(l));
  }
  set(l: Local): this {
    this.op(Op.localSet, ...uleb128(l));
    this.statementEnds?.push(this.code.length);
    return this;
  }
  /** Declares a local of `type`, pops the stack top into it and returns it. */
  setNew(type: ValType): Local {
    const l = this.local(type);
    this.set(l);
    return l;
  }
  tee(l: Local): this {
    return this.op(Op.localTee, ...uleb128(l));
  }

  // i32.
  i32Const(v: number): this {
    return this.op(Op.i32Const, ...sleb128(v));
  }
  i32Add(): this {
    return this.op(Op.i32Add);
  }
  /** An i64 constant (only values in the i32 range, which is all the module needs: timeouts). */
  i64Const(v: number): this {
    return this.op(Op.i64Const, ...sleb128(v));
  }
  i32Sub(): this {
    return this.op(Op.i32Sub);
  }
  i32Mul(): this {
    return this.op(Op.i32Mul);
  }
  i32Shl(): this {
    return this.op(Op.i32Shl);
  }
  i32ShrU(): this {
    return this.op(Op.i32ShrU);
  }
  i32And(): this {
    return this.op(Op.i32And);
  }
  i32DivU(): this {
    return this.op(Op.i32DivU);
  }
  i32RemU(): this {
    return this.op(Op.i32RemU);
  }
  i32Eqz(): this {
    return this.op(Op.i32Eqz);
  }
  i32Eq(): this {
    return this.op(Op.i32Eq);
  }
  i32Ne(): this {
    return this.op(Op.i32Ne);
  }
  i32LtS(): this {
    return this.op(Op.i32LtS);
  }
  i32LtU(): this {
    return this.op(Op.i32LtU);
  }
  i32GtS(): this {
    return this.op(Op.i32GtS);
  }
  i32GtU(): this {
    return this.op(Op.i32GtU);
  }
  i32LeS(): this {
    return this.op(Op.i32LeS);
  }
  i32LeU(): this {
    return this.op(Op.i32LeU);
  }
  i32GeS(): this {
    return this.op(Op.i32GeS);
  }
  i32GeU(): this {
    return this.op(Op.i32GeU);
  }
  i32Load(offset = 0, alignLog2 = 2): this {
    return this.op(Op.i32Load, ...this.memarg(alignLog2, offset));
  }
  i32Store(offset = 0, alignLog2 = 2): this {
    return this.op(Op.i32Store, ...this.memarg(alignLog2, offset));
  }

  // f32 scalar.
  f32Load(offset = 0, alignLog2 = 2): this {
    return this.op(Op.f32Load, ...this.memarg(alignLog2, offset));
  }
  f32Store(offset = 0, alignLog2 = 2): this {
    return this.op(Op.f32Store, ...this.memarg(alignLog2, offset));
  }
  f32Add(): this {
    return this.op(Op.f32Add);
  }
  f32Mul(): this {
    return this.op(Op.f32Mul);
  }

  // 128-bit SIMD.
  v128Load(offset = 0, alignLog2 = 4): this {
    return this.simd(SimdOp.v128Load, ...this.memarg(alignLog2, offset));
  }
  v128Store(offset = 0, alignLog2 = 4): this {
    return this.simd(SimdOp.v128Store, ...this.memarg(alignLog2, offset));
  }
  /** Loads one 32-bit value and replicates it into all four lanes. */
  v128Load32Splat(offset = 0, alignLog2 = 2): this {
    return this.simd(SimdOp.v128Load32Splat, ...this.memarg(alignLog2, offset));
  }
  /** Loads 64 bits into the low half of a v128 and zeroes the high half (e.g. two f32 values). */
  v128Load64Zero(offset = 0, alignLog2 = 3): this {
    return this.simd(SimdOp.v128Load64Zero, ...this.memarg(alignLog2, offset));
  }
  /** A v128 constant from 16 little-endian bytes. */
  v128Const(bytes: ArrayLike<number>): this {
    if (bytes.length !== 16) throw new RangeError("v128.const needs 16 bytes");
    return this.simd(SimdOp.v128Const, ...Array.from(bytes));
  }
  /** v128 of four zero floats. */
  v128Zero(): this {
    return this.v128Const(new Uint8Array(16));
  }
  f32x4Splat(): this {
    return this.simd(SimdOp.f32x4Splat);
  }
  f32x4ExtractLane(lane: number): this {
    return this.simd(SimdOp.f32x4ExtractLane, lane);
  }
  f32x4Add(): this {
    return this.simd(SimdOp.f32x4Add);
  }
  f32x4Mul(): this {
    return this.simd(SimdOp.f32x4Mul);
  }
  /** [a, b] → a − b per lane (IEEE, one rounding). */
  f32x4Sub(): this {
    return this.simd(SimdOp.f32x4Sub);
  }
  /** [a, b] → a / b per lane (IEEE, one rounding). */
  f32x4Div(): this {
    return this.simd(SimdOp.f32x4Div);
  }
  /** [a] → √a per lane (IEEE, correctly rounded). */
  f32x4Sqrt(): this {
    return this.simd(SimdOp.f32x4Sqrt);
  }
  /** [a] → the two low f32 lanes of a widened to f64 (exact). */
  f64x2PromoteLowF32x4(): this {
    return this.simd(SimdOp.f64x2PromoteLowF32x4);
  }
  /** [a, b] → a + b per f64 lane (IEEE, one rounding). */
  f64x2Add(): this {
    return this.simd(SimdOp.f64x2Add);
  }
  /** A SIMD instruction without immediates, by its specification name (see {@link SIMD_OPS}). */
  simdOp(name: SimdOpName): this {
    return this.simd(SIMD_OPS[name]);
  }
  /** A SIMD load by name (see {@link SIMD_LOADS}): [addr] → v128, natural alignment by default. */
  simdLoad(name: SimdLoadName, offset = 0, alignLog2?: number): this {
    const natural = name === "v128.load8_splat"
      ? 0
      : name === "v128.load16_splat"
      ? 1
      : name === "v128.load64_zero" || name === "v128.load64_splat"
      ? 3
      : 2;
    return this.simd(SIMD_LOADS[name], ...this.memarg(alignLog2 ?? natural, offset));
  }
  /** `i32x4.extract_lane`: [v] → the i32 in `lane`. */
  i32x4ExtractLane(lane: number): this {
    return this.simd(SimdOp.i32x4ExtractLane, lane);
  }
  /** `v128.load64_lane`: [addr, v] → v with the 64 bits at addr in `lane` (0 or 1). */
  v128Load64Lane(lane: number, offset = 0, alignLog2 = 3): this {
    return this.simd(SimdOp.v128Load64Lane, ...this.memarg(alignLog2, offset), lane);
  }
  /** `v128.store64_lane`: [addr, v] → stores the 64 bits of `lane` (e.g. two f32 values). */
  v128Store64Lane(lane: number, offset = 0, alignLog2 = 3): this {
    return this.simd(SimdOp.v128Store64Lane, ...this.memarg(alignLog2, offset), lane);
  }
  /**
   * `i8x16.shuffle` on 32-bit lanes: [a, b] → the vector whose lane j is lane `lanes[j]` of a‖b (0–3: a's,
   * 4–7: b's).
   */
  i32x4Shuffle(lanes: readonly [number, number, number, number]): this {
    return this.simd(SimdOp.i8x16Shuffle, ...lanes.flatMap((l) => [4 * l, 4 * l + 1, 4 * l + 2, 4 * l + 3]));
  }
  /** Relaxed SIMD `f32x4.relaxed_madd`: [a, b, c] → a·b + c (fused where the CPU has FMA). */
  f32x4RelaxedMadd(): this {
    return this.simd(SimdOp.f32x4RelaxedMadd);
  }

  // Atomics (threads proposal). Alignment must be natural, so it is fixed at 2 (4 bytes).
  private atomic(op: number, offset: number): this {
    return this.op(ATOMIC_PREFIX, ...uleb128(op), ...this.memarg(2, offset));
  }
  /** `i32.atomic.load`: [addr] → value. */
  i32AtomicLoad(offset = 0): this {
    return this.atomic(AtomicOp.i32Load, offset);
  }
  /** `i32.atomic.store`: [addr, value]. */
  i32AtomicStore(offset = 0): this {
    return this.atomic(AtomicOp.i32Store, offset);
  }
  /** `i32.atomic.rmw.add`: [addr, value] → old value. */
  i32AtomicAdd(offset = 0): this {
    return this.atomic(AtomicOp.i32RmwAdd, offset);
  }
  /** `i32.atomic.rmw.cmpxchg`: [addr, expected, replacement] → old value (stored only if it was expected). */
  i32AtomicCmpxchg(offset = 0): this {
    return this.atomic(AtomicOp.i32RmwCmpxchg, offset);
  }
  /**
   * `memory.atomic.wait32`: [addr, expected, timeout ns (i64, −1 = forever)] → 0 woken, 1 value was not
   * `expected`, 2 timed out. Blocks the thread (the host must allow blocking on it).
   */
  atomicWait32(offset = 0): this {
    return this.atomic(AtomicOp.wait32, offset);
  }
  /** `memory.atomic.notify`: [addr, count] → number of waiters woken. */
  atomicNotify(offset = 0): this {
    return this.atomic(AtomicOp.notify, offset);
  }

  /** The encoded function body (locals + code + `end`), as in the code section. */
  encodeBody(): number[] {
    if (this.depth !== 0) throw new Error(`${this.depth} block(s) left open`);
    // Run-length encode consecutive locals of the same type.
    const groups: number[][] = [];
    for (let i = 0; i < this.locals.length;) {
      let j = i;
      while (j < this.locals.length && this.locals[j] === this.locals[i]) j++;
      groups.push([...uleb128(j - i), this.locals[i]]);
      i = j;
    }
    const body = [...encodeVector(groups), ...this.code, Op.end];
    return [...uleb128(body.length), ...body];
  }
}

/** How the module gets its memory. */
export type MemorySpec =
  | { kind: "export"; name: string; initialPages: number; maxPages?: number }
  | {
    kind: "import";
    module: string;
    name: string;
    initialPages: number;
    maxPages?: number;
    /** A shared memory (threads proposal; needs `maxPages`), so Workers can run the module on it too. */
    shared?: boolean;
  };

/** A module under construction: functions (all exported by name) and one memory. */
export class ModuleBuilder {
  private readonly functions: { name: string; fn: FunctionBuilder }[] = [];
  private memory?: MemorySpec;

  /** Sets the module's memory (exported or imported). */
  setMemory(spec: MemorySpec): this {
    this.memory = spec;
    return this;
  }

  /** Adds a function, exported as `name`; returns the builder to emit its body into. */
  addFunction(name: string, params: readonly ValType[], results: readonly ValType[] = []): FunctionBuilder {
    const fn = new FunctionBuilder(params, results, this.functions.length);
    this.functions.push({ name, fn });
    return fn;
  }

  /** The module's binary encoding. */
  encode(): Uint8Array<ArrayBuffer> {
    const out: number[] = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
    const section = (id: number, content: number[]) => {
      out.push(id, ...uleb128(content.length), ...content);
    };
    const limits = (m: MemorySpec) => {
      if (m.kind === "import" && m.shared) {
        if (m.maxPages === undefined) throw new Error("a shared memory needs maxPages");
        return [0x03, ...uleb128(m.initialPages), ...uleb128(m.maxPages)];
      }
      return m.maxPages === undefined
        ? [0x00, ...uleb128(m.initialPages)]
        : [0x01, ...uleb128(m.initialPages), ...uleb128(m.maxPages)];
    };

    // Type section: one function type per function (duplicates are legal and keep this simple).
    section(
      1,
      encodeVector(this.functions.map(({ fn }) => [
        0x60,
        ...encodeVector(fn.params.map((t) => [t])),
        ...encodeVector(fn.results.map((t) => [t])),
      ])),
    );
    const mem = this.memory;
    if (mem?.kind === "import") {
      section(2, encodeVector([[...encodeName(mem.module), ...encodeName(mem.name), 0x02, ...limits(mem)]]));
    }
    section(3, encodeVector(this.functions.map((_, i) => uleb128(i))));
    if (mem?.kind === "export") section(5, encodeVector([limits(mem)]));
    const exports = this.functions.map(({ name }, i) => [...encodeName(name), 0x00, ...uleb128(i)]);
    if (mem?.kind === "export") exports.push([...encodeName(mem.name), 0x02, 0x00]);
    section(7, encodeVector(exports));
    section(10, encodeVector(this.functions.map(({ fn }) => fn.encodeBody())));
    return new Uint8Array(out);
  }
}
