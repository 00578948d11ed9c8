"""Coil compression: K virtual coils from the SVD of the coil covariance (per slice).

The standard answer for 12–32-coil arrays (Huang et al., MRI 2008, "software channel
compression"): the compressed data are ``U_K^H y`` with ``U_K`` the K dominant left
singular vectors of the samples ``y [coils, all samples]``. The operator stays the same
with maps ``U_K^H S`` (linear in the coils), so maps from the file compress exactly and
estimated maps are estimated afterwards from the virtual coils. It runs before coil-map
estimation and costs one C x C eigen-decomposition per slice.
"""

from __future__ import annotations

import logging
from dataclasses import replace

import numpy as np

from ..data import KSpaceData

log = logging.getLogger(__name__)


def compression_matrix(kspace: np.ndarray, n_virtual: int) -> tuple[np.ndarray, float]:
    """``U_K [coils, K]`` and the fraction of the signal energy the K virtual coils keep."""
    C = kspace.shape[0]
    if not 1 <= n_virtual <= C:
        raise ValueError(
            f"virtual coils must be between 1 and the {C} coils of the data, got {n_virtual}"
        )
    y = kspace.reshape(C, -1)
    # C x C covariance instead of an SVD of the C x N samples: same vectors, N/C times cheaper
    cov = (y @ y.conj().T).astype(np.complex128)
    w, v = np.linalg.eigh(cov)
    order = np.argsort(w)[::-1]
    w, v = w[order], v[:, order]
    kept = float(w[:n_virtual].sum() / max(w.sum(), 1e-30))
    return v[:, :n_virtual].astype(np.complex64), kept


def compress_coils(data: KSpaceData, n_virtual: int) -> KSpaceData:
    """``data`` with ``n_virtual`` virtual coils (maps transformed too when the file has them)."""
    if n_virtual >= data.n_coils:
        return data
    U, kept = compression_matrix(data.kspace, n_virtual)
    UH = U.conj().T
    k = np.einsum("vc,csr->vsr", UH, data.kspace).astype(np.complex64)
    maps = (
        None
        if data.coil_maps is None
        else np.einsum("vc,cyx->vyx", UH, data.coil_maps).astype(np.complex64)
    )
    log.info(
        "%s: %d coils compressed to %d virtual coils (%.2f%% of the energy kept)",
        data.source,
        data.n_coils,
        n_virtual,
        100 * kept,
    )
    attrs = dict(data.attrs) | {
        "virtual_coils": int(n_virtual),
        "coils_acquired": int(data.n_coils),
        "virtual_coils_energy": kept,
    }
    return replace(data, kspace=k, coil_maps=maps, attrs=attrs)


__all__ = ["compress_coils", "compression_matrix"]
