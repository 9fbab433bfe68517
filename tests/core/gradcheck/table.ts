/**
 * The gradcheck table: every row of f64 gradient checks, grouped into the Deno tests that run them
 * (`tests/core/gradcheck_test.ts`). Each row names the ops it checks; `tests/core/op_coverage_test.ts` fails for a
 * differentiable op (see `core/ops/catalog.ts`) that no row names.
 *
 * @module
 */
import { BINARY_ROWS, UNARY_ROWS } from "./elementwise.ts";
import { FUSED_ROWS } from "./fused.ts";
import { REDUCTION_ROWS, SOFTMAX_ROWS } from "./reductions.ts";
import { LAYOUT_ROWS, MATMUL_ROWS } from "./linalg_layout.ts";
import { GROUPED_ROWS } from "./grouped.ts";
import { INDEXING_ROWS, ORDER_SCAN_ROWS } from "./indexing.ts";
import { CAST_DROPOUT_CUSTOM_ROWS, CROSS_ENTROPY_ROWS } from "./loss_cast_custom.ts";
import { LAYER_NORM_ROWS } from "./norm.ts";
import { ATTENTION_ROWS } from "./attention.ts";
import type { GradcheckFamily } from "./row.ts";

/** Every family of rows, in the order the tests run. */
export const GRADCHECK_TABLE: readonly GradcheckFamily[] = [
  UNARY_ROWS,
  BINARY_ROWS,
  FUSED_ROWS,
  REDUCTION_ROWS,
  SOFTMAX_ROWS,
  MATMUL_ROWS,
  GROUPED_ROWS,
  LAYOUT_ROWS,
  INDEXING_ROWS,
  ORDER_SCAN_ROWS,
  LAYER_NORM_ROWS,
  ATTENTION_ROWS,
  CROSS_ENTROPY_ROWS,
  CAST_DROPOUT_CUSTOM_ROWS,
];
