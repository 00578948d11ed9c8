"""Radial MRI physics: trajectory, binning, density compensation, coil maps, gradient
delays, the operator.

Names are imported on first use (PEP 562): ``dainr.data`` needs only the NumPy binning,
and importing the package must not pull torch in through the operator.
"""

import importlib as _importlib

_LAZY = {
    "FrameBinning": ".binning",
    "bin_spokes": ".binning",
    "plan_binning": ".binning",
    "apply_delays": ".delays",
    "estimate_delays": ".delays",
    "estimate_coil_maps": ".coils",
    "time_averaged_coil_images": ".coils",
    "compute_dcf": ".density",
    "pipe_menon_dcf": ".density",
    "ramp_dcf": ".density",
    "RadialOperator": ".operator",
    "direct_forward": ".operator",
    "GOLDEN_ANGLE_DEG": ".trajectory",
    "cycles_to_radians": ".trajectory",
    "golden_angle_trajectory": ".trajectory",
}


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(_importlib.import_module(module, __name__), name)


__all__ = [
    "GOLDEN_ANGLE_DEG",
    "FrameBinning",
    "RadialOperator",
    "apply_delays",
    "bin_spokes",
    "compute_dcf",
    "cycles_to_radians",
    "direct_forward",
    "estimate_coil_maps",
    "estimate_delays",
    "golden_angle_trajectory",
    "pipe_menon_dcf",
    "plan_binning",
    "ramp_dcf",
    "time_averaged_coil_images",
]
