"""Training: pure jitted train/eval steps, data parallelism over a mesh, and the main job's loop.

  config      default_config() and validate()
  state       TrainState, the pytree of everything that changes
  steps       train_step(state, batch) -> (state, per_example), eval step, fused epoch step
  setup       Setup: data, model, mesh, tracker, initial state; load_data, build_model
  programs    every jitted program, built through one door (`programs.jit`)
  epoch       one training epoch: plan, clock, steps, record
  evaluators  what each evaluation measures: parts by name or import path, in phase order
              (evaluator_base: their interface)
  features    optional behaviours behind one interface: pruning, turn-over, weighting,
              reduction, and the prioritization methods; parts built from their own block
              (regularity_jax.registry, docs/parts.md)
  migration   old config spellings read as today's (docs/migration.md)
  replicas    the seed axis (num_seeds > 1)
  sharding    the 1-D `data` mesh, and the id-sharded statistics (shard_statistics)
  hosts       many processes (jax.distributed): who writes, host fetches of global arrays
  optimizers  optax optimizers and epoch-following schedules
  loop        train_and_evaluate(config, workdir)
  signals     SIGTERM: stop at the next step boundary, release the lock, exit 143
"""

from regularity_jax.training.config import default_config
from regularity_jax.training.errors import ConfigError
from regularity_jax.training.errors import Interrupted
from regularity_jax.training.errors import OtherProcessFailed
from regularity_jax.training.errors import Terminated
from regularity_jax.training.errors import TrainingDiverged
from regularity_jax.training.loop import RunResult
from regularity_jax.training.loop import train_and_evaluate
from regularity_jax.training.setup import build_model
from regularity_jax.training.setup import load_data
from regularity_jax.training.state import TrainState

__all__ = ["default_config", "ConfigError", "Interrupted", "OtherProcessFailed", "Terminated",
           "TrainingDiverged",
           "RunResult", "train_and_evaluate", "TrainState", "build_model", "load_data"]
