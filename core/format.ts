/**
 * Human-readable tensor printing, PyTorch-style: `tensor([[1.0000, 2.0000]], dtype=f32)`.
 *
 * @module
 */
import type { TypedArray } from "./dtype.ts";
import type { Tensor } from "./tensor.ts";

const EDGE = 3; // elements shown at each end of a long axis
const LIMIT = 1000; // summarise tensors with more elements than this

function fmtValue(v: number, dtype: string): string {
  if (dtype === "bool") return v ? "true" : "false";
  if (dtype === "i32") return String(v);
  if (Number.isNaN(v)) return "nan";
  if (!Number.isFinite(v)) return v > 0 ? "inf" : "-inf";
  const a = Math.abs(v);
  return a !== 0 && (a >= 1e5 || a < 1e-4) ? v.toExponential(4) : v.toFixed(4);
}

function render(
  data: TypedArray,
  shape: readonly number[],
  offset: number,
  depth: number,
  dtype: string,
  summarise: boolean,
): string {
  if (shape.length === 0) return fmtValue(data[offset], dtype);
  const [n, ...rest] = shape;
  const inner = rest.reduce((p, d) => p * d, 1);
  const parts: string[] = [];
  for (let i = 0; i < n; i++) {
    if (summarise && n > 2 * EDGE && i === EDGE) {
      parts.push("...");
      i = n - EDGE - 1;
      continue;
    }
    parts.push(render(data, rest, offset + i * inner, depth + 1, dtype, summarise));
  }
  const sep = rest.length === 0 ? ", " : ",\n" + " ".repeat(depth + 8);
  return `[${parts.join(sep)}]`;
}

/** Renders `t` with its values if the backend can read synchronously, else a one-line summary. */
export function formatTensor(t: Tensor): string {
  const meta = `dtype=${t.dtype}${t.device.name === "cpu" ? "" : `, device=${t.device.name}`}`;
  const read = t.device.backend.readSync;
  if (!read || t.storage.released) return `Tensor(shape=[${t.shape.join(", ")}], ${meta})`;
  const body = render(read(t.storage.buf, t.dtype, t.size), t.shape, 0, 0, t.dtype, t.size > LIMIT);
  const grad = t.requiresGrad ? ", requiresGrad=true" : "";
  return `tensor(${body}, ${meta}${grad})`;
}
