r"""Schedules: the Rayleigh-weight warm-up and the learning rate's linear warm-up plus cosine decay.

Rayleigh weight (design, section 10): on the near-uniform graph of an untrained backbone the
consistency term favours a blank prediction, so it is switched on only once the features have
organised:

.. math::

    \alpha(t) = \alpha \cdot \operatorname{clip}\Big(\frac{t - t_w}{t_r}, 0, 1\Big),

with ``t`` the training time in (fractional) epochs, ``t_w`` the warm-up and ``t_r`` the ramp
length (``t_r = 0``: a step at ``t_w``). The learning rate follows a per-step schedule: linear
warm-up over ``W`` steps, then a cosine from the peak to ``min_lr`` over the remaining steps.

Example:
    >>> [rayleigh_weight(t, 0.4, warmup_epochs=1, ramp_epochs=2) for t in (0.5, 1, 2, 3, 9)]
    [0.0, 0.0, 0.2, 0.4, 0.4]
    >>> schedule = CosineSchedule(total_steps=10, warmup_steps=2, min_ratio=0.0)
    >>> [round(schedule(s), 3) for s in (0, 1, 2, 6, 9)]
    [0.5, 1.0, 1.0, 0.5, 0.038]
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch

from cheeger.config import LossWeightsConfig, TrainConfig

__all__ = ["CosineSchedule", "build_optimizer", "loss_weights", "rayleigh_weight"]


def rayleigh_weight(t: float, alpha: float, warmup_epochs: float, ramp_epochs: float) -> float:
    """Weight of the Rayleigh term at training time ``t`` (epochs, fractional).

    Args:
        t: epochs elapsed, e.g. ``epoch + batch / batches_per_epoch`` (0-based epoch).
        alpha: final weight.
        warmup_epochs: the weight is 0 while ``t < warmup_epochs``.
        ramp_epochs: length of the linear ramp from 0 to ``alpha`` (0: a step).

    Returns:
        ``alpha * clip((t - warmup) / ramp, 0, 1)``.
    """
    if min(alpha, warmup_epochs, ramp_epochs) < 0:
        raise ValueError(f"rayleigh_weight: alpha, warmup_epochs and ramp_epochs must be >= 0, "
                         f"got {alpha}, {warmup_epochs}, {ramp_epochs}")  # fmt: skip
    if t < warmup_epochs:
        return 0.0
    if ramp_epochs == 0:
        return float(alpha)
    return float(alpha) * min(1.0, (t - warmup_epochs) / ramp_epochs)


def loss_weights(config: LossWeightsConfig, t: float) -> dict[str, float]:
    """Weights of the extra loss terms at time ``t`` (epochs); cross-entropy has weight 1.

    Example:
        >>> loss_weights(LossWeightsConfig(alpha=1.0, beta=0.1, gamma=0.0, warmup_epochs=1,
        ...                                ramp_epochs=0), 1.5)
        {'rayleigh': 1.0, 'bulk': 0.1, 'connectivity': 0.0, 'neuralef': 1.0}
    """
    return {
        "rayleigh": rayleigh_weight(t, config.alpha, config.warmup_epochs, config.ramp_epochs),
        "bulk": config.beta,
        "connectivity": config.gamma,
        "neuralef": config.neuralef_weight,
    }


class CosineSchedule:
    """Learning-rate factor of step ``s`` (0-based): linear warm-up, then cosine to ``min_ratio``.

    A callable object rather than a closure so that ``LambdaLR.state_dict()`` stores its settings
    with the checkpoint.

    Args:
        total_steps: steps of the whole run.
        warmup_steps: steps of linear warm-up (``(s + 1) / W``, never 0).
        min_ratio: final factor, ``min_lr / lr``.
    """

    def __init__(self, total_steps: int, warmup_steps: int = 0, min_ratio: float = 0.0) -> None:
        if total_steps < 1 or not 0 <= warmup_steps <= total_steps or not 0 <= min_ratio <= 1:
            raise ValueError(
                f"CosineSchedule: need total_steps >= 1, 0 <= warmup_steps <= total_steps and "
                f"0 <= min_ratio <= 1, got {total_steps}, {warmup_steps}, {min_ratio}"
            )
        self.total_steps, self.warmup_steps, self.min_ratio = total_steps, warmup_steps, min_ratio

    def __call__(self, step: int) -> float:
        if step < self.warmup_steps:
            return (step + 1) / self.warmup_steps
        decay_steps = max(1, self.total_steps - self.warmup_steps)
        progress = min(1.0, (step - self.warmup_steps) / decay_steps)
        return self.min_ratio + (1 - self.min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def build_optimizer(
    parameters: Iterable[torch.nn.Parameter], config: TrainConfig, steps_per_epoch: int
) -> tuple[torch.optim.AdamW, torch.optim.lr_scheduler.LambdaLR]:
    """AdamW and its per-step schedule for ``config.epochs`` epochs of ``steps_per_epoch``.

    Call ``scheduler.step()`` after every ``optimizer.step()``.
    """
    total = config.epochs * steps_per_epoch
    warmup = min(total, round(config.lr_warmup_epochs * steps_per_epoch))
    optimizer = torch.optim.AdamW(parameters, lr=config.lr, weight_decay=config.weight_decay)
    schedule = CosineSchedule(total, warmup, min(1.0, config.min_lr / config.lr))
    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
