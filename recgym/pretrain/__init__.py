"""Supervised pretraining of state encoders on a rating log (next item, click-through).

* :mod:`recgym.pretrain.windows`: users' chronological sequences cut into
  observations in exactly the environment's format, and the splits;
* :mod:`recgym.pretrain.tasks`: each task's split, head, loss and metrics (next item,
  cloze, click-through);
* :mod:`recgym.pretrain.trainer`: the training loop (Adam, early stopping).

``recgym pretrain`` (:mod:`recgym.experiments.pretrain`) runs it on a
scenario's training users and writes weights that ``state_encoders.make(...,
weights=DIR)`` and ``recgym train --encoder-weights DIR`` load.
"""

from recgym.pretrain.tasks import (
    TASKS,
    ClickThroughHead,
    ClickThroughTask,
    ClozeTask,
    ItemScoreHead,
    NextItemHead,
    NextItemTask,
    click_metrics,
    make_task,
    ranking_metrics,
)
from recgym.pretrain.trainer import Pretrained, TrainerConfig, TrainResult, fit, pretrain_encoder
from recgym.pretrain.windows import (
    UserSequences,
    WindowBuilder,
    leave_one_out,
    time_ordered_split,
    training_cuts,
    window_ends,
)

__all__ = [
    "TASKS",
    "ClickThroughHead",
    "ClickThroughTask",
    "ClozeTask",
    "ItemScoreHead",
    "NextItemHead",
    "NextItemTask",
    "Pretrained",
    "TrainResult",
    "TrainerConfig",
    "UserSequences",
    "WindowBuilder",
    "click_metrics",
    "fit",
    "leave_one_out",
    "make_task",
    "pretrain_encoder",
    "ranking_metrics",
    "time_ordered_split",
    "training_cuts",
    "window_ends",
]
