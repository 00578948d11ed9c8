"""The package list in pyproject.toml must cover every package, or a wheel install breaks."""

from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]


def test_every_package_is_listed_in_pyproject():
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(cfg["packages"])
    on_disk = {
        ".".join(p.parent.relative_to(ROOT / "src").parts)
        for p in (ROOT / "src").rglob("__init__.py")
    } | {"napari_dainr", "dainr.resources"}
    assert on_disk == listed


def test_the_bundled_sample_is_found_as_package_data():
    from importlib.resources import files

    names = [p.name for p in files("dainr.resources").iterdir()]
    assert any(n.endswith(".h5") for n in names)
