// The child process of tests/kernels/blas_detect_test.ts: one matmul under the default options (so detection
// runs as it would in a user's program), then the same product on the built-in kernels; prints a JSON report.
import { cpuOptions, detectBlas, matmul, setCpuOptions, tensor } from "../../mod.ts";
import { filled } from "./host_rng.ts";

const a = tensor(filled(2 * 24 * 40, 1), { shape: [2, 24, 40] }), b = tensor(filled(40 * 16, 2), { shape: [40, 16] });
const viaDefault = matmul(a, b).dataSync();
setCpuOptions({ matmul: "wasm" });
const viaBuiltin = matmul(a, b).dataSync();
let maxDiff = 0;
for (let i = 0; i < viaDefault.length; i++) maxDiff = Math.max(maxDiff, Math.abs(viaDefault[i] - viaBuiltin[i]));
console.log(JSON.stringify({ library: detectBlas().library, maxDiff, options: cpuOptions() }));
