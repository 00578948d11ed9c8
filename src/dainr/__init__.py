"""dainr: unsupervised dynamic MRI reconstruction from golden-angle radial k-space.

The public API is what this module lists; everything else is private to its package.
Names are imported on first use (PEP 562), so that ``import dainr``, ``dainr --help``
and the napari reader's "is this file mine?" check do not pay for torch (about 2 s).
"""

from __future__ import annotations

__version__ = "0.1.0"

import importlib as _importlib
import os as _os
from typing import TYPE_CHECKING

# libgomp's default lets idle OpenMP workers spin; as soon as another process competes
# for the cores, torch and finufft then run 5-15x slower (a DA-INR step on the 2-core
# CPU: 1.1 s instead of 80 ms). Sleeping workers cost little on an idle machine. Only
# effective when dainr is imported before torch; a user's own setting wins.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

#: public name -> the submodule that defines it (imported when the name is first used)
_LAZY = {
    "fit": ".api",
    "make_method": ".api",
    "reconstruct": ".api",
    "KSpaceData": ".data",
    "RadialSeries": ".data",
    "DainrError": ".errors",
    "FitError": ".errors",
    "InputError": ".errors",
    "load_kspace": ".io",
    "read_recon_h5": ".io",
    "write_kspace_h5": ".io",
    "write_recon_h5": ".io",
    "Done": ".loop",
    "Progress": ".loop",
    "Snapshot": ".loop",
    "StopRequest": ".loop",
    "run_fit": ".loop",
    "available_methods": ".methods",
    "roi_curve": ".metrics",
    "score_series": ".metrics",
    "Reconstruction": ".result",
    "KSpaceVolume": ".data",
    "load_volume": ".volume",
    "read_volume_recon": ".io.volume_output",
    "reconstruct_volume": ".api",
}

if TYPE_CHECKING:  # what static tools and IDEs see; at run time __getattr__ provides these
    from .api import fit, make_method, reconstruct, reconstruct_volume
    from .data import KSpaceData, KSpaceVolume, RadialSeries
    from .errors import DainrError, FitError, InputError
    from .io import load_kspace, read_recon_h5, write_kspace_h5, write_recon_h5
    from .io.volume_output import read_volume_recon
    from .loop import Done, Progress, Snapshot, StopRequest, run_fit
    from .methods import available_methods
    from .metrics import roi_curve, score_series
    from .result import Reconstruction
    from .volume import load_volume


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'dainr' has no attribute {name!r}")
    value = getattr(_importlib.import_module(module, __name__), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


def versions() -> dict[str, str]:
    """Versions of the libraries a result depends on (stored in every output)."""
    import importlib.metadata as md
    import platform

    out = {"python": platform.python_version(), "dainr": __version__}
    for pkg in (
        "torch",
        "numpy",
        "scipy",
        "h5py",
        "torchkbnufft",
        "finufft",
        "cufinufft",
        "tinycudann",
        "ismrmrd",
        "distributed",
    ):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            pass
    return out


__all__ = [
    "DainrError",
    "Done",
    "FitError",
    "InputError",
    "KSpaceData",
    "KSpaceVolume",
    "Progress",
    "RadialSeries",
    "Reconstruction",
    "Snapshot",
    "StopRequest",
    "available_methods",
    "fit",
    "load_kspace",
    "load_volume",
    "make_method",
    "read_recon_h5",
    "read_volume_recon",
    "reconstruct",
    "reconstruct_volume",
    "roi_curve",
    "run_fit",
    "score_series",
    "versions",
    "write_kspace_h5",
    "write_recon_h5",
]
