/**
 * Resuming from a checkpoint continues a run exactly: N steps straight and N/2 + save + load (into freshly
 * built objects) + N/2 give bit-identical weights. Dropout and the data order draw from the checkpointed
 * generator, and AdamW's moments travel in the checkpoint, so each of them must be restored for this to hold.
 */
import assert from "node:assert/strict";
import {
  AdamW,
  applySchedule,
  crossEntropy,
  decodeCheckpoint,
  DecoderLM,
  encodeCheckpoint,
  Generator,
  loadCheckpoint,
  randint,
  saveCheckpoint,
  scope,
  warmupCosineLr,
} from "../../mod.ts";

const VOCAB = 37, STEPS = 8;
const schedule = warmupCosineLr({ peak: 3e-3, warmupSteps: 2, totalSteps: STEPS });

function build() {
  const generator = new Generator(2024);
  const model = new DecoderLM(VOCAB, 16, 2, 2, { rope: true, dropout: 0.1, generator });
  const optimizer = new AdamW(model.namedParameters(), { lr: 3e-3, weightDecay: 0.01 });
  return { generator, model, optimizer };
}

function train(run: ReturnType<typeof build>, from: number, to: number): void {
  for (let step = from; step < to; step++) {
    scope(() => {
      const ids = randint(0, VOCAB, [3, 9], { generator: run.generator });
      const logits = run.model.forward(ids.slice(1, 0, -1));
      crossEntropy(logits, ids.slice(1, 1)).backward();
      applySchedule(run.optimizer, schedule, step);
      run.optimizer.step();
      run.optimizer.zeroGrad();
    });
  }
}

async function weights(run: ReturnType<typeof build>): Promise<number[][]> {
  return await Promise.all(run.model.parameters().map(async (p) => Array.from(await p.data())));
}

Deno.test("resume: N/2 + checkpoint + N/2 equals N steps straight, bit for bit", async () => {
  const straight = build();
  train(straight, 0, STEPS);

  const first = build();
  train(first, 0, STEPS / 2);
  const bytes = await encodeCheckpoint({
    model: first.model,
    optimizer: first.optimizer,
    generator: first.generator,
    step: STEPS / 2,
    config: { vocab: VOCAB },
  });
  const resumed = build(); // fresh objects: fresh init draws, empty optimizer state
  const { step } = decodeCheckpoint(bytes, {
    model: resumed.model,
    optimizer: resumed.optimizer,
    generator: resumed.generator,
  });
  assert.equal(step, STEPS / 2);
  train(resumed, step, STEPS);

  assert.deepEqual(await weights(resumed), await weights(straight));
  assert.notDeepEqual(await weights(build()), await weights(straight)); // training did change the weights
});

Deno.test({
  name: "resume through a checkpoint file on disk",
  ignore: Deno.permissions.querySync({ name: "write" }).state !== "granted",
  fn: async () => {
    const dir = await Deno.makeTempDir();
    try {
      const straight = build();
      train(straight, 0, STEPS);
      const first = build();
      train(first, 0, STEPS / 2);
      const path = `${dir}/step-4.safetensors`;
      await saveCheckpoint(path, {
        model: first.model,
        optimizer: first.optimizer,
        generator: first.generator,
        step: 4,
      });
      const resumed = build();
      const { step } = await loadCheckpoint(path, {
        model: resumed.model,
        optimizer: resumed.optimizer,
        generator: resumed.generator,
      });
      train(resumed, step, STEPS);
      assert.deepEqual(await weights(resumed), await weights(straight));
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
