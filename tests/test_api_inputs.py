"""The Python API checks in-memory k-space as the readers check files, and shows progress."""

from __future__ import annotations

import io

import numpy as np
import pytest

import dainr
from dainr.data import KSpaceData


def test_from_arrays_converts_every_trajectory_unit(tiny_data):
    ny, nx = tiny_data.image_shape
    rad = tiny_data.trajectory
    per_unit = {
        "rad": rad,
        "cycles": rad / (2 * np.pi),
        "1/FOV": rad * np.array([ny, nx]) / (2 * np.pi),
    }
    for unit, traj in per_unit.items():
        d = KSpaceData.from_arrays(tiny_data.kspace, traj, (ny, nx), trajectory_units=unit)
        np.testing.assert_allclose(d.trajectory, rad, atol=1e-5, err_msg=unit)
        assert d.trajectory.dtype == np.float32
    with pytest.raises(ValueError, match="trajectory_units must be one of rad, cycles, 1/FOV"):
        KSpaceData.from_arrays(tiny_data.kspace, rad, (ny, nx), trajectory_units="mm")


def test_one_over_fov_trajectory_passed_as_radians_names_the_unit(tiny_data):
    ny, nx = tiny_data.image_shape
    traj = tiny_data.trajectory * np.array([ny, nx]) / (2 * np.pi)  # up to 16: 1/FOV
    bad = KSpaceData(tiny_data.kspace, traj.astype(np.float32), (ny, nx))
    with pytest.raises(dainr.InputError, match=r"trajectory.*trajectory_units='1/FOV'"):
        dainr.reconstruct(bad, "nufft")


def test_cycles_trajectory_passed_as_radians_names_the_unit(tiny_data):
    cycles = (tiny_data.trajectory / (2 * np.pi)).astype(np.float32)
    data = KSpaceData(tiny_data.kspace, cycles, tiny_data.image_shape)
    with pytest.raises(dainr.InputError, match=r"reaches only 0.5.*trajectory_units='cycles'"):
        data.validated()


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda d: setattr(d, "kspace", d.kspace.real.copy()), "kspace: expected complex numbers"),
        (lambda d: setattr(d, "kspace", d.kspace[0]), "kspace: expected 3 dimensions"),
        (lambda d: d.kspace.__setitem__((0, 0, 0), np.nan), "kspace: contains 1 NaN/Inf"),
        (lambda d: setattr(d, "trajectory", d.trajectory[:-1]), "/trajectory: expected shape"),
        (lambda d: setattr(d, "image_shape", (32,)), "image_shape: expected two positive ints"),
        (lambda d: setattr(d, "coil_maps", d.coil_maps[:2]), "/coil_maps: has 2 coils"),
        (lambda d: setattr(d, "dcf", -np.ones(d.kspace.shape[1:], np.float32)), "non-negative"),
    ],
)
def test_in_memory_data_get_the_file_checks(tiny_data, change, message):
    change(tiny_data)
    with pytest.raises(dainr.InputError, match=message) as e:
        dainr.make_method(tiny_data, "nufft")
    assert str(e.value).startswith("in-memory KSpaceData")  # where, as a file names its path
    with pytest.raises(dainr.InputError, match=message):
        dainr.fit(tiny_data, "nufft")  # raised on the call, before the first message


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_reconstruct_with_progress_shows_a_bar(tiny_data, monkeypatch):
    err = _Terminal()
    monkeypatch.setattr("sys.stderr", err)
    result = dainr.reconstruct(tiny_data, "grasp", progress=True, steps=4)
    assert result.steps_done == 4
    text = err.getvalue()
    assert "4/4" in text and "step" in text and "\r" in text  # tqdm's bar, redrawn in place
    quiet = _Terminal()
    monkeypatch.setattr("sys.stderr", quiet)
    dainr.reconstruct(tiny_data, "grasp", steps=2)
    assert quiet.getvalue() == ""  # no bar unless asked
