"""Deep Q-learning (Mnih et al. 2015): environments, replay memory, the TD target, the loop and ``play``.

``cnnkit train`` hands ``task: dqn`` here (:func:`run_dqn`); the supervised trainer is not involved.
"""

from .dqn import dqn_update as dqn_update
from .dqn import epsilon_at as epsilon_at
from .dqn import epsilon_greedy as epsilon_greedy
from .dqn import q_loss as q_loss
from .dqn import td_target as td_target
from .envs import ENV_NAMES as ENV_NAMES
from .envs import canonical_env_name as canonical_env_name
from .envs import make_env as make_env
from .evaluate import evaluate_policy as evaluate_policy
from .loop import DQNAgent as DQNAgent
from .loop import run_dqn as run_dqn
from .replay import ReplayMemory as ReplayMemory
from .vector import VectorEnv as VectorEnv

__all__ = [
    "DQNAgent", "ENV_NAMES", "ReplayMemory", "VectorEnv", "canonical_env_name", "dqn_update", "epsilon_at",
    "epsilon_greedy", "evaluate_policy", "make_env", "q_loss", "run_dqn", "td_target",
]
