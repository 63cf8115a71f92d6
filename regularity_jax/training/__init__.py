"""Training: pure jitted steps, data parallelism over a mesh, and the loop of the main job.

  config     default_config() and validate()
  state      TrainState, the pytree of everything that changes
  steps      train_step(state, batch) -> (state, per_example), eval step, fused epoch step
  sharding   the 1-D `data` mesh
  optimizers optax optimizers and schedules from config fields
  loop       train_and_evaluate(config, workdir)
"""

from regularity_jax.training.config import default_config
from regularity_jax.training.errors import ConfigError
from regularity_jax.training.errors import TrainingDiverged
from regularity_jax.training.loop import RunResult
from regularity_jax.training.loop import train_and_evaluate
from regularity_jax.training.state import TrainState

__all__ = ["default_config", "ConfigError", "TrainingDiverged", "RunResult",
           "train_and_evaluate", "TrainState"]
