"""Warm-up + decay schedule, weight average and gradient clipping of the denoiser."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from medseglatdiff.engines import GradientClipping, WeightAverage, warmup_polynomial_lr


def test_warmup_then_polynomial_decay() -> None:
    optimizer = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0)
    schedule = warmup_polynomial_lr(optimizer, total_iterations=100, warmup_fraction=0.1, power=1.0)
    lrs = []
    for _ in range(100):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedule.step()
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)
    assert lrs[10] == pytest.approx(1.0) and lrs[55] == pytest.approx(0.5) and lrs[-1] < 0.02
    assert all(a <= b for a, b in zip(lrs[:10], lrs[1:10]))
    state = schedule.state_dict()  # checkpointable with torch.load(weights_only=True): no pickled schedule object
    assert state["lr_lambdas"] == [None]
    schedule.lr_lambdas[0].schedule.total = 200  # a time budget stretches it
    assert schedule.lr_lambdas[0](100) > 0


def test_weight_average_follows_then_averages_and_round_trips() -> None:
    net = nn.Linear(1, 1, bias=False)
    average = WeightAverage(net, decay=0.9)
    for value in [1.0] * 50 + [0.0]:
        with torch.no_grad():
            net.weight.fill_(value)
        average.update()
    assert 0.8 < float(average.module.weight) < 0.95  # lags the last jump
    restored = WeightAverage(nn.Linear(1, 1, bias=False), decay=0.9)
    restored.load_state_dict(average.state_dict())
    assert float(restored.module.weight) == pytest.approx(float(average.module.weight))
    assert WeightAverage(net, decay=0).module is net
    with pytest.raises(ValueError):
        WeightAverage(net, decay=1.0)


def test_gradient_clipping_bounds_the_norm() -> None:
    net = nn.Linear(4, 1)
    net(torch.full((1, 4), 100.0)).sum().backward()
    engine = type("E", (), {"amp": False, "scaler": None, "optimizer": None})()
    GradientClipping(net, 1.0)(engine)
    norm = torch.norm(torch.stack([p.grad.norm() for p in net.parameters()]))
    assert float(norm) == pytest.approx(1.0, rel=1e-4)
