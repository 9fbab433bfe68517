/**
 * The config file of an `exp:routing-recovery` output folder, `config.json` (see `common/stored_config.ts`): the
 * experiment, the preset, the command and the resolved config.
 *
 * @module
 */
import { parseConfig } from "../common/config.ts";
import * as stored from "../common/stored_config.ts";
import { type RoutingRecoveryConfig, routingRecoverySchema } from "./config.ts";

export { configPath } from "../common/stored_config.ts";

/** What `config.json` holds. */
export interface StoredConfig extends stored.StoredConfig<RoutingRecoveryConfig> {
  /** Always "routing-recovery". */
  experiment: "routing-recovery";
}

const KIND: stored.StoredConfigKind<RoutingRecoveryConfig> = {
  experiment: "routing-recovery",
  parse: (raw, where) => parseConfig(routingRecoverySchema, raw, where),
};

/** The stored config of `out`; none is a UserError. */
export function readStoredConfig(out: string): Promise<StoredConfig> {
  return stored.readStoredConfig<RoutingRecoveryConfig, StoredConfig>(out, KIND);
}

/** Writes `config.json` when `out` has none, else checks it holds the same config (a ConfigError naming `why`). */
export function ensureStoredConfig(out: string, s: StoredConfig, why: string): Promise<void> {
  return stored.ensureStoredConfig(out, s, KIND, why);
}
