"""Rebuild the shipped DCE sample: ``python -m dainr.simulate.make_sample [--out PATH]``.

Deterministic: the same code and libraries give the same file content. The default
output is the sample's place in ``dainr.resources`` (``resources/`` of a checkout).
"""

from __future__ import annotations

import argparse
import logging
import sys
from importlib.resources import files
from pathlib import Path

from ..io import write_kspace_h5
from . import SAMPLE_CONFIG, SAMPLE_NAME, simulate_phantom
from .acquire import quantize_below_noise

log = logging.getLogger(__name__)


def make_sample(out: Path) -> Path:
    data = simulate_phantom("dce", SAMPLE_CONFIG)
    data.attrs["created_by"] = "python -m dainr.simulate.make_sample"
    # The sample ships with the package: samples rounded far below the noise, then
    # compressed, take half the bytes of the raw floats at no visible cost.
    data.kspace, step = quantize_below_noise(data.kspace, SAMPLE_CONFIG.noise)
    data.attrs["kspace_quantization_step"] = step
    write_kspace_h5(out, data, compress=True)
    log.info("wrote %s (%.1f MB)", out, out.stat().st_size / 1e6)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m dainr.simulate.make_sample", description=__doc__)
    p.add_argument("--out", type=Path, default=Path(str(files("dainr.resources") / SAMPLE_NAME)))
    args = p.parse_args(argv)
    out = make_sample(args.out)
    print(f"{out} ({out.stat().st_size / 1e6:.2f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
