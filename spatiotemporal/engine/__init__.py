"""Task-agnostic training engine: config system, optimisers and schedules, the Trainer and its Run.

Layering: imports torch / timm and ``spatiotemporal.data.samplers`` only (never models or datasets).
"""

from ..utils.atomic import atomic_torch_save, atomic_write_text
from ..utils.config import ConfigError, config_to_dict, dump_config, load_config, parse_overrides, read_yaml
from .checkpoint import CheckpointError, checkpoint_dir, load_checkpoint, save_checkpoint
from .distributed import (
    DistInfo,
    all_gather_object,
    all_reduce_mean,
    all_reduce_sum,
    barrier,
    get_rank,
    get_world_size,
    init_distributed,
    is_distributed,
    is_main_process,
    resolve_device,
)
from .ema import EmaConfig
from .errors import NoUsableSamples, TrainingDiverged
from .metrics_log import MetricsLogger, read_metrics
from .optim import OptimConfig, build_optimizer, param_groups
from .progress import track
from .rng import get_rng_state, seed_everything, set_rng_state
from .run import Run, build_run
from .schedule import LRSchedule, ScheduleConfig
from .task import Task
from .train_config import TrainConfig
from .trainer import SamplerFactory, Trainer, move_to_device

__all__ = [
    "ConfigError", "load_config", "dump_config", "config_to_dict", "parse_overrides", "read_yaml",
    "OptimConfig", "build_optimizer", "param_groups", "ScheduleConfig", "LRSchedule", "EmaConfig",
    "TrainConfig", "Trainer", "Task", "SamplerFactory", "move_to_device", "Run", "build_run",
    "save_checkpoint", "load_checkpoint", "checkpoint_dir", "atomic_torch_save", "atomic_write_text",
    "CheckpointError", "TrainingDiverged", "NoUsableSamples",
    "DistInfo", "init_distributed", "resolve_device", "is_distributed", "get_rank", "get_world_size",
    "is_main_process", "all_reduce_sum", "all_reduce_mean", "all_gather_object", "barrier",
    "MetricsLogger", "read_metrics", "seed_everything", "get_rng_state", "set_rng_state", "track",
]
