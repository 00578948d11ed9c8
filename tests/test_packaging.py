"""What a user's install gets: every package in the wheel, and a napari-style install
(``pip install napari[pyqt6]``, then this package without extras) that gives two
working docks, a reader, a writer and the samples."""

import importlib.metadata as md
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
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


def test_the_plugins_imports_are_core_dependencies():
    """napari's plugin manager installs a plugin without extras: what napari_dainr imports
    (napari itself aside, which is the user's) must be in ``dependencies``."""
    import ast

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    core = {_req_name(r) for r in project["dependencies"]}
    mapping = md.packages_distributions()
    stdlib = set(sys.stdlib_module_names)
    needed = set()
    for path in (ROOT / "napari_dainr").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                top = name.split(".")[0]
                if top in stdlib or top in ("napari", "napari_dainr", "dainr", "__future__"):
                    continue
                needed |= {_req_name(d) for d in mapping.get(top, [top])}
    assert needed <= core, f"imported by the plugin but not core dependencies: {needed - core}"
    assert not core & {"pyqt5", "pyqt6", "pyside2", "pyside6", "napari"}


def _req_name(req: str) -> str:
    import re

    return re.split(r"[\s\[<>=!~;]", req, maxsplit=1)[0].lower().replace("_", "-")


#: run inside the fresh venv: import every command of napari.yaml, then dock both widgets
_CHECK = textwrap.dedent(
    """
    import importlib
    import npe2
    manifest = npe2.PluginManifest.from_distribution("napari-dainr")
    for cmd in manifest.contributions.commands:
        module, attr = cmd.python_name.split(":")
        getattr(importlib.import_module(module), attr)
        print("imported", cmd.id)
    import napari
    viewer = napari.Viewer(show=False)
    for w in manifest.contributions.widgets:
        dock, widget = viewer.window.add_plugin_dock_widget("napari-dainr", w.display_name)
        print("docked", w.display_name, type(widget).__name__)
    viewer.close()
    """
)

#: what pip prints when the package index cannot be reached (then the test is skipped)
_OFFLINE = ("Temporary failure in name resolution", "NewConnectionError", "Network is unreachable",
            "No matching distribution found", "Could not find a version")  # fmt: skip


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel of this tree, built with this venv's setuptools (no download), from a copy:
    setuptools leaves build/ and egg-info behind in the tree it builds."""
    tmp = tmp_path_factory.mktemp("wheel")
    tree = tmp / "tree"
    tree.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE", "src", "napari_dainr", "resources"):
        if (ROOT / name).is_dir():
            skip = shutil.ignore_patterns("__pycache__", "*.egg-info")
            shutil.copytree(ROOT / name, tree / name, ignore=skip)
        else:
            shutil.copy2(ROOT / name, tree / name)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(tmp), str(tree)],
        check=True, timeout=300,
    )  # fmt: skip
    [built] = tmp.glob("napari_dainr-*.whl")
    return built


def test_wheel_metadata_licence_and_dependencies(wheel):
    import zipfile

    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        [meta] = [n for n in names if n.endswith(".dist-info/METADATA")]
        text = z.read(meta).decode()
    assert "License-Expression: BSD-3-Clause" in text
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    core = [
        ln.split(":", 1)[1].strip() for ln in text.splitlines() if ln.startswith("Requires-Dist:")
    ]
    core = [r for r in core if "extra ==" not in r]
    assert {"matplotlib", "magicgui", "qtpy", "superqt"} <= {_req_name(r) for r in core}
    assert "napari_dainr/napari.yaml" in names and any(n.endswith(".h5") for n in names)
    assert 'napari[all]>=0.5.1; extra == "all"' in text


def _lend_torch(py: str, folder: Path) -> None:
    """Make this venv's torch build visible to the fresh venv ``py`` (a .pth file), as if the
    user had installed it: unpacking its 700 MB again takes minutes on a busy 2-core machine
    and says nothing about this package. Its own dependencies pip still installs."""
    folder.mkdir()
    dist = md.distribution("torch")
    tops = {Path(str(f)).parts[0] for f in dist.files or ()} - {".."}
    for top in tops:
        src = Path(dist.locate_file(top))
        if src.exists():
            (folder / top).symlink_to(src)
    site = subprocess.run(
        [py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    (Path(site) / "lent_torch.pth").write_text(str(folder) + "\n")


@pytest.mark.network
@pytest.mark.timeout(1500)
def test_plugin_manager_style_install_gives_working_docks(wheel, tmp_path):
    """A fresh venv with napari, then the wheel without extras: every contribution loads."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    py = str(venv / "bin" / "python")
    _lend_torch(py, tmp_path / "lent")
    for args in (["napari", "PyQt6"], [str(wheel)]):
        r = subprocess.run(
            [py, "-m", "pip", "install", "-q", *args], capture_output=True, text=True, timeout=1200
        )
        if r.returncode != 0 and any(s in r.stderr for s in _OFFLINE):
            pytest.skip(f"package index unreachable: {r.stderr.strip().splitlines()[-1]}")
        assert r.returncode == 0, r.stderr
    env = dict(os.environ)
    env.setdefault("QT_QPA_PLATFORM", "offscreen" if "DISPLAY" not in env else "xcb")
    r = subprocess.run(
        [py, "-c", _CHECK], capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path
    )
    assert r.returncode == 0, r.stdout + r.stderr
    manifest = (ROOT / "napari_dainr" / "napari.yaml").read_text()
    n_commands = manifest.count("python_name:")
    assert r.stdout.count("imported ") == n_commands
    assert "docked DA-INR reconstruction" in r.stdout and "docked ROI signal curves" in r.stdout
