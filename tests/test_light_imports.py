"""``import dainr``, ``dainr --help`` and the napari reader's check import no torch.

napari asks every reader about every .h5/.mat a user opens, and torch costs about 2 s
to import: these run in fresh interpreters, since this one has torch loaded already.
"""

from __future__ import annotations

import subprocess
import sys

import h5py
import numpy as np
import pytest
from scipy.io import savemat

import dainr
from dainr.io import write_kspace_h5, write_recon_h5
from dainr.result import Reconstruction


def run_fresh(code: str) -> str:
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_dainr_help_imports_no_torch():
    out = run_fresh(
        "import sys\n"
        "from dainr.cli import main\n"
        "try:\n"
        "    main(['--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print('TORCH', 'torch' in sys.modules)\n"
    )
    assert "recon" in out and "simulate" in out  # the help itself was printed
    assert "TORCH False" in out


def test_dainr_help_imports_no_subcommand_module():
    out = run_fresh(
        "import sys\n"
        "from dainr.cli import main\n"
        "try:\n"
        "    main(['--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print('LOADED', sorted(m for m in sys.modules if m.endswith('_cmd')))\n"
    )
    assert "LOADED []" in out


def test_each_subcommand_registers_with_its_listed_help():
    import argparse

    from dainr.cli import SUBCOMMANDS, build_parser

    for name in SUBCOMMANDS:
        parser = build_parser([name])
        [sub] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        helps = {c.dest: c.help for c in sub._choices_actions}
        assert helps == SUBCOMMANDS, name  # the module's own help equals the listed one


def test_subcommand_help_imports_no_torch():
    out = run_fresh(
        "import sys\n"
        "from dainr.cli import main\n"
        "try:\n"
        "    main(['recon', '--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print('TORCH', 'torch' in sys.modules)\n"
    )
    assert "--dcf" in out
    assert "TORCH False" in out


def test_public_api_names_resolve_lazily():
    out = run_fresh(
        "import sys, dainr\n"
        "print('TORCH', 'torch' in sys.modules)\n"
        "print(dainr.reconstruct.__module__, dainr.KSpaceData.__name__)\n"
    )
    assert "TORCH False" in out and "dainr.api KSpaceData" in out
    assert set(dainr.__all__) <= set(dir(dainr))
    for name in dainr.__all__:
        assert getattr(dainr, name) is not None
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        dainr.nope  # noqa: B018


@pytest.fixture
def our_files(tmp_path, tiny_data):
    kspace = tmp_path / "k.h5"
    write_kspace_h5(kspace, tiny_data)
    recon = tmp_path / "r.h5"
    write_recon_h5(recon, Reconstruction(np.ones((2, 4, 4), np.complex64), "nufft", {}, 13))
    grasp = tmp_path / "grasp.mat"  # the GRASP demo's layout, MATLAB v5
    savemat(
        grasp,
        {
            "kdata": tiny_data.kspace[:, :, :].transpose(2, 1, 0),
            "k": np.ones((64, 78), np.complex64) * 0.1,
            "w": np.ones((64, 78), np.float32),
            "b1": np.ones((32, 32, 4), np.complex64),
        },
    )
    v73 = tmp_path / "v73.mat"  # MATLAB v7.3 is HDF5: names come from h5py
    with h5py.File(v73, "w") as f:
        f["kdata"] = np.zeros((4, 78, 64), np.float32)
        f["k"] = np.zeros((78, 64), np.float32)
        f["w"] = np.zeros((78, 64), np.float32)
        f["b1"] = np.zeros((4, 32, 32), np.float32)
    return [kspace, recon, grasp, v73]


def test_reader_check_imports_no_torch(our_files):
    paths = [str(p) for p in our_files]
    out = run_fresh(
        "import sys\n"
        "from napari_dainr._reader import napari_get_reader\n"
        f"found = [napari_get_reader(p) is not None for p in {paths!r}]\n"
        "print('FOUND', found)\n"
        "print('TORCH', 'torch' in sys.modules)\n"
    )
    assert "FOUND [True, True, True, True]" in out
    assert "TORCH False" in out
