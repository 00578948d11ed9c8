"""Radial MRI physics: trajectory, binning, density compensation, coil maps, the operator."""

from .binning import FrameBinning, bin_spokes, plan_binning
from .coils import estimate_coil_maps, time_averaged_coil_images
from .density import compute_dcf, pipe_menon_dcf, ramp_dcf
from .operator import RadialOperator, direct_forward
from .trajectory import GOLDEN_ANGLE_DEG, cycles_to_radians, golden_angle_trajectory

__all__ = [
    "GOLDEN_ANGLE_DEG",
    "FrameBinning",
    "RadialOperator",
    "bin_spokes",
    "compute_dcf",
    "cycles_to_radians",
    "direct_forward",
    "estimate_coil_maps",
    "golden_angle_trajectory",
    "pipe_menon_dcf",
    "plan_binning",
    "ramp_dcf",
    "time_averaged_coil_images",
]
