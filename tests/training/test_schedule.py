from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from cheeger.config import LossWeightsConfig, TrainConfig
from cheeger.training import CosineSchedule, build_optimizer, loss_weights, rayleigh_weight


def test_rayleigh_weight_is_off_then_ramps_then_holds():
    w = [rayleigh_weight(t, 0.5, warmup_epochs=2, ramp_epochs=4) for t in (0, 1.99, 2, 3, 5, 6, 60)]
    assert w == [0.0, 0.0, 0.0, 0.125, 0.375, 0.5, 0.5]


def test_zero_ramp_is_a_step_and_zero_warmup_starts_ramping_at_once():
    assert rayleigh_weight(0.999, 1.0, 1, 0) == 0.0 and rayleigh_weight(1.0, 1.0, 1, 0) == 1.0
    assert rayleigh_weight(0.5, 1.0, 0, 1) == 0.5


@given(t=st.floats(0, 50), dt=st.floats(0, 10), alpha=st.floats(0, 3),
       warm=st.floats(0, 10), ramp=st.floats(0, 10))  # fmt: skip
def test_rayleigh_weight_is_monotone_and_bounded(t, dt, alpha, warm, ramp):
    a, b = rayleigh_weight(t, alpha, warm, ramp), rayleigh_weight(t + dt, alpha, warm, ramp)
    assert 0 <= a <= b <= alpha


def test_negative_settings_are_rejected():
    with pytest.raises(ValueError, match="must be >= 0"):
        rayleigh_weight(1, 0.1, -1, 0)


def test_loss_weights_maps_config_to_terms():
    config = LossWeightsConfig(alpha=0.2, beta=0.3, gamma=0.4, warmup_epochs=1, ramp_epochs=1)
    assert loss_weights(config, 0.5) == {"rayleigh": 0.0, "bulk": 0.3, "connectivity": 0.4,
                                         "neuralef": 1.0}
    assert loss_weights(config, 1.5)["rayleigh"] == pytest.approx(0.1)


def test_cosine_schedule_values():
    s = CosineSchedule(total_steps=8, warmup_steps=2, min_ratio=0.1)
    assert [s(0), s(1)] == [0.5, 1.0]
    for step in range(2, 8):
        p = (step - 2) / 6
        assert s(step) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * p)))
    values = [s(k) for k in range(2, 8)]
    assert values == sorted(values, reverse=True) and s(100) == pytest.approx(0.1)
    with pytest.raises(ValueError, match="warmup_steps <= total_steps"):
        CosineSchedule(4, 5)


def test_build_optimizer_steps_the_lr_through_the_schedule():
    param = torch.nn.Parameter(torch.zeros(2))
    config = TrainConfig(epochs=2, lr=0.01, weight_decay=0.5, lr_warmup_epochs=0.5, min_lr=0.001)
    optimizer, scheduler = build_optimizer([param], config, steps_per_epoch=4)
    assert optimizer.param_groups[0]["weight_decay"] == 0.5
    lrs = []
    for _ in range(8):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    expected = CosineSchedule(8, 2, 0.1)
    assert lrs == pytest.approx([0.01 * expected(k) for k in range(8)])
    state = scheduler.state_dict()  # the schedule's settings travel with the checkpoint
    assert state["lr_lambdas"][0] == {"total_steps": 8, "warmup_steps": 2, "min_ratio": 0.1}
