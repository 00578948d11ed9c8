"""Scores without ground truth: the held-out spokes a fit never saw, through its own maps."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import dainr
from dainr.cli import main
from dainr.errors import InputError
from dainr.evaluate import heldout_score
from dainr.io import read_recon_h5
from dainr.physics.operator import RadialOperator


def test_the_score_is_the_scaled_residual_on_the_held_out_spokes(tiny_data):
    r = dainr.reconstruct(tiny_data, "grasp", holdout=0.1, seed=0, device="cpu")
    s = heldout_score(r, tiny_data)
    held = r.heldout_spokes
    spf = r.spokes_per_frame
    # by hand, frame by frame: the held-out samples of each frame through the fit's maps
    num = den = 0.0
    ax_all, y_all = [], []
    for row in held:
        f = int(row[0]) // spf
        traj = tiny_data.trajectory[row].reshape(1, -1, 2)
        op = RadialOperator(traj, tiny_data.image_shape, r.coil_maps, device="cpu")
        ax = op.forward(torch.as_tensor(r.frames[f : f + 1])).numpy()[0]
        y = tiny_data.kspace[:, row].reshape(tiny_data.n_coils, -1)
        ax_all.append(ax.astype(np.complex128))
        y_all.append(y.astype(np.complex128))
    ax, y = np.concatenate(ax_all, 1), np.concatenate(y_all, 1)
    a = np.vdot(ax, y) / np.vdot(ax, ax)
    num, den = np.linalg.norm(a * ax - y), np.linalg.norm(y)
    assert s.error == pytest.approx(num / den, rel=1e-4)
    assert 0 < s.error < 1 and s.samples == held.size * tiny_data.n_readout
    # the complex scale is free: a global factor on the frames changes nothing
    r.frames = r.frames * (3.0 - 2.0j)
    assert heldout_score(r, tiny_data).error == pytest.approx(s.error, rel=1e-4)


def test_it_ranks_fits_as_the_truth_does(cardiac):
    """GRASP at three lambdas: the held-out error orders them as robust PSNR does."""
    ref = cardiac.reference
    rows = []
    for scale in (0.01, 1.0, 100.0):
        r = dainr.reconstruct(cardiac, "grasp", lambda_scale=scale, holdout=0.1, device="cpu")
        rows.append(
            (heldout_score(r, cardiac).weighted, dainr.score_series(r.frames, ref).robust_psnr_mean)
        )
    by_error = sorted(range(3), key=lambda i: rows[i][0])
    by_truth = sorted(range(3), key=lambda i: -rows[i][1])
    assert by_error == by_truth, rows


def test_cli_compares_fits_and_outputs_carry_their_maps(tiny_file, tmp_path, capsys):
    outs = []
    for method, extra in (
        ("grasp", []),
        ("dainr", ["--steps", "20", "--set", "hash_log2_size=12"]),
    ):
        out = tmp_path / f"{method}.h5"
        assert main(["recon", str(tiny_file), "--method", method, "--holdout", "0.1",
                     "--out", str(out), "--quiet", *extra]) == 0  # fmt: skip
        outs.append(out)
    r = read_recon_h5(outs[0])
    assert r.coil_maps is not None and r.coil_maps.shape == (4, 32, 32)
    capsys.readouterr()
    assert main(["eval", *map(str, outs), "--data", str(tiny_file), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [x["method"] for x in rows] == ["grasp", "dainr"]
    assert all(0 < x["error"] < 1 and 0 < x["weighted"] < 1 for x in rows)
    # an output's /coil_maps is what --coil-maps takes
    again = tmp_path / "again.h5"
    assert main(["recon", str(tiny_file), "--method", "nufft", "--coil-maps", str(outs[0]),
                 "--out", str(again), "--quiet"]) == 0  # fmt: skip
    np.testing.assert_array_equal(read_recon_h5(again).coil_maps, r.coil_maps)


def test_fits_with_other_held_out_spokes_or_none_are_refused(tiny_file, tmp_path, capsys):
    a, b, c = (tmp_path / n for n in ("a.h5", "b.h5", "c.h5"))
    common = ["--method", "grasp", "--quiet", "--steps", "3"]
    main(["recon", str(tiny_file), *common, "--holdout", "0.1", "--out", str(a)])
    main(["recon", str(tiny_file), *common, "--holdout", "0.1", "--seed", "5", "--out", str(b)])
    main(["recon", str(tiny_file), *common, "--out", str(c)])
    capsys.readouterr()
    assert main(["eval", str(a), str(b), "--data", str(tiny_file)]) == 2
    assert "differ from a.h5's" in capsys.readouterr().err
    assert main(["eval", str(a), str(c), "--data", str(tiny_file)]) == 2
    err = capsys.readouterr().err
    assert "c.h5" in err and "fit with --holdout" in err and err.count("\n") == 1
    with pytest.raises(InputError, match="no spokes were held out"):
        heldout_score(read_recon_h5(c), dainr.load_kspace(tiny_file))
