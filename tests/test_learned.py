"""The LearnedMethod base: schedule, checkpoint keys, release, the frames each step draws."""

import numpy as np
import pytest
import torch

from dainr.methods.learned import random_frames

from .conftest import small_method


def test_step_schedule_multiplies_the_rate_every_lr_step(cardiac):
    m = small_method("tddip", cardiac, steps=5, lr=1e-3, lr_step=2, lr_gamma=0.5)
    rates = []
    for i in range(5):
        m.step(i)
        rates.append(m.optimizer.param_groups[0]["lr"])
    assert rates == pytest.approx([1e-3, 5e-4, 5e-4, 2.5e-4, 2.5e-4])


def test_hashinr_halves_its_rate_at_half_the_steps(cardiac):
    m = small_method("hashinr", cardiac, steps=4, lr=1e-3, lr_gamma=0.5)
    rates = []
    for i in range(4):
        m.step(i)
        rates.append([g["lr"] for g in m.optimizer.param_groups])
    np.testing.assert_allclose(rates, [[1e-3] * 2, [5e-4] * 2, [5e-4] * 2, [2.5e-4] * 2])


@pytest.mark.parametrize(
    "name, keys",
    [
        ("tddip", ["mapping", "decoder", "optimizer", "scheduler"]),
        ("hashinr", ["grid", "mlp", "optimizer", "scheduler"]),
    ],
)
def test_checkpoint_keys_are_the_networks_optimizer_and_schedule(name, keys, cardiac):
    """The same keys as before the base existed, so older checkpoints still load."""
    m = small_method(name, cardiac, steps=3)
    m.step(0)
    state = m.state_dict()
    assert list(state) == keys
    other = small_method(name, cardiac, steps=3)
    other.load_state_dict(state)
    for net in keys[:2]:
        a, b = getattr(m, net).state_dict(), getattr(other, net).state_dict()
        assert all(torch.equal(a[k], b[k]) for k in a)
    assert other.scheduler.last_epoch == 1


def test_release_drops_the_optimiser_moments_and_keeps_the_weights(cardiac):
    m = small_method("hashinr", cardiac, steps=3)
    m.step(0)
    assert m.optimizer.state
    before = m.current_frames()
    m.release()
    assert not m.optimizer.state and m.grid.table.grad is None
    torch.testing.assert_close(m.current_frames(), before)


def test_random_frames_draw_like_the_released_codes():
    torch.manual_seed(5)
    one = random_frames(10, 1, "cpu")
    torch.manual_seed(5)
    assert torch.equal(one, torch.randint(10, (1,)))
    torch.manual_seed(5)
    three = random_frames(10, 3, "cpu")
    torch.manual_seed(5)
    assert torch.equal(three, torch.randperm(10)[:3])
    assert len(set(three.tolist())) == 3
