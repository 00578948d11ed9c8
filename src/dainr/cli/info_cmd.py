"""``dainr info``: what is in a k-space or reconstruction file."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub) -> None:
    p = sub.add_parser(
        "info", help="describe a k-space or reconstruction file", description=__doc__
    )
    p.add_argument("file", type=Path)
    p.add_argument("--spokes-per-frame", type=int, help="show the frames this binning gives")
    p.set_defaults(func=run)


def describe(path: Path, spokes_per_frame: int | None = None) -> str:
    from ..io import is_raw_file, is_recon_file, load_kspace, read_recon_h5
    from ..io.volume_output import is_volume_recon

    if path.suffix.lower() in (".h5", ".hdf5") and is_volume_recon(path):
        return describe_volume_recon(path)
    if is_raw_file(path):
        return describe_volume(path, spokes_per_frame)
    if path.suffix.lower() in (".h5", ".hdf5") and is_recon_file(path):
        r = read_recon_h5(path)
        lines = [
            f"{path}: reconstruction by {r.method}" + (" (partial)" if r.partial else ""),
            f"  frames       {r.frames.shape[0]} of {r.frames.shape[1]} x {r.frames.shape[2]} (upscale {r.upscale:g})",
            f"  spokes/frame {r.spokes_per_frame}",
            f"  wall time    {r.seconds:.1f} s, peak memory {r.peak_memory_bytes / 2**20:.0f} MiB",
            f"  config       {r.config}",
        ] + curve_summary(r)
        return "\n".join(lines + [f"  {k:<12} {v}" for k, v in r.attrs.items() if k != "versions"])
    d = load_kspace(path, spokes_per_frame=spokes_per_frame)
    spf = spokes_per_frame or d.default_spokes_per_frame()
    n_frames, left = divmod(d.n_spokes, spf)
    ref = f"{d.reference.shape[0]} frames" if d.reference is not None else "none"
    lines = [
        f"{path}: radial k-space",
        f"  coils        {d.n_coils}",
        f"  spokes       {d.n_spokes} x {d.n_readout} samples",
        f"  image        {d.image_shape[0]} x {d.image_shape[1]}",
        f"  frames       {n_frames} at {spf} spokes/frame"
        + (f" ({left} spokes dropped)" if left else ""),
        f"  coil maps    {'in file' if d.coil_maps is not None else 'estimated at reconstruction'}",
        f"  reference    {ref}",
        f"  dcf          {'in file' if d.dcf is not None else 'computed'}",
    ]
    lines += [f"  {k:<12} {v}" for k, v in d.attrs.items()]
    return "\n".join(lines)


def curve_summary(r) -> list[str]:
    """Lines on the chosen step, the training / held-out curves and an ensemble's spread."""
    import numpy as np

    lines = []
    h = r.history
    if h is not None and len(h):
        train = h[:, 1]
        lines.append(
            f"  history      {len(h)} steps, training loss {train[0]:.4g} -> {train[-1]:.4g} (min {np.nanmin(train):.4g})"
        )
        evaluated = h[np.isfinite(h[:, 2])]
        if len(evaluated):
            best = evaluated[np.argmin(evaluated[:, 2])]
            lines.append(
                f"  held-out     {len(evaluated)} evaluations: {evaluated[0, 2]:.4g} at step {evaluated[0, 0]:.0f}, "
                f"best {best[2]:.4g} at step {best[0]:.0f}, last {evaluated[-1, 2]:.4g} at step {evaluated[-1, 0]:.0f}"
            )
    if r.chosen_step is not None:
        why = (
            "best held-out loss"
            if r.heldout_spokes is not None
            else "last step: no held-out spokes"
        )
        lines.append(
            f"  chosen step  {r.chosen_step} ({why}"
            + (", stopped early)" if r.early_stopped else ")")
        )
    if r.heldout_spokes is not None:
        H, n = r.heldout_spokes.shape
        lines.append(
            f"  held out     {n} spoke(s) in each of {H} of {r.frames.shape[0]} frames (/holdout_spokes)"
        )
    if r.ensemble > 1:
        spread = (
            ""
            if r.std is None
            else f", per-pixel std of the magnitude: median {np.median(r.std):.4g}, max {r.std.max():.4g} (/std)"
        )
        lines.append(f"  ensemble     mean of {r.ensemble} seeds{spread}")
    return lines


def run(args: argparse.Namespace) -> int:
    print(describe(args.file, args.spokes_per_frame))
    return 0


def describe_volume(path: Path, spokes_per_frame: int | None = None) -> str:
    """Raw input: layout, slices/partitions, spokes, coils, frames."""
    from ..volume import load_volume

    vol = load_volume(path)
    spf = spokes_per_frame or vol.default_spokes_per_frame()
    n_frames, left = divmod(vol.n_spokes, spf)
    what = {
        "stack-of-stars": "kz partitions (slices after the inverse DFT over kz)",
        "multi-slice": "2-D slices",
        "single": "slice",
    }[vol.layout]
    lines = [
        f"{path}: {vol.attrs.get('source_format', 'raw')} radial k-space, {vol.layout}",
        f"  slices       {vol.n_slices} {what}",
        f"  coils        {vol.n_coils}",
        f"  spokes       {vol.n_spokes} per slice x {vol.n_readout} samples",
        f"  image        {vol.image_shape[0]} x {vol.image_shape[1]}",
        f"  frames       {n_frames} at {spf} spokes/frame"
        + (f" ({left} spokes dropped)" if left else ""),
    ]
    if vol.pixel_size_mm:
        dz, dy, dx = vol.pixel_size_mm
        lines.append(f"  voxel        {dz:g} x {dy:g} x {dx:g} mm (z, y, x)")
    lines += [
        f"  {k:<12} {v}" for k, v in vol.attrs.items() if k not in ("source_format", "layout")
    ]
    return "\n".join(lines)


def describe_volume_recon(path: Path) -> str:
    """A volume output: slices done, seconds per slice, cluster, config."""
    import numpy as np

    from ..io.volume_output import read_volume_recon

    r = read_volume_recon(path)
    F, Z, ny, nx = r.frames.shape
    secs = ", ".join(f"{z}: {s:.1f}" for z, s in zip(r.slices, r.seconds) if np.isfinite(s))
    lines = [
        f"{path}: volume reconstruction by {r.method}" + (" (partial)" if r.partial else ""),
        f"  recon        {F} frames x {Z} slices x {ny} x {nx}",
        f"  slices       {r.slices} ({len(r.slices_done)} done)",
        f"  seconds      {secs or 'none done'}",
        f"  cluster      {r.attrs.get('cluster', '?')}",
        f"  wall time    {float(r.attrs.get('wall_seconds', 0.0)):.1f} s",
        f"  config       {r.config}",
    ]
    return "\n".join(lines)
