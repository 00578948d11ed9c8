"""Phantoms, birdcage maps, retrospective sampling, ``dainr simulate`` and the shipped sample."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from dainr.cli import main
from dainr.io import load_kspace, read_kspace_h5, stored_rois, write_kspace_h5
from dainr.physics.operator import direct_forward
from dainr.simulate import (
    SAMPLE_CONFIG,
    SimulationConfig,
    birdcage_maps,
    cardiac_phantom,
    cardiac_sample,
    dce_phantom,
    lv_volume_fraction,
    sample_path,
    simulate_images,
    simulate_phantom,
)
from dainr.simulate.phantoms import CARDIAC

# ------------------------------------------------------------------------------ cardiac


def test_cardiac_phantom_shape_dtype_and_determinism():
    a = cardiac_phantom(48, 6, seed=3)
    assert a.shape == (6, 48, 48) and a.dtype == np.complex64
    assert np.array_equal(a, cardiac_phantom(48, 6, seed=3))
    b = cardiac_phantom(48, 6, seed=4)
    assert not np.allclose(a, b)  # texture and phase follow the seed
    assert np.abs(a).max() <= 1.0 + 1e-5 and np.abs(a[:, 0, 0]).max() == 0  # air outside the torso


def _lv_blood_radius_px(frame: np.ndarray, n: int) -> float:
    """Equivalent radius of the LV blood pool, measured inside the epicardium.

    Within 0.19 half-FOVs of the LV centre there is only blood (1.0) and myocardium
    or papillary muscle (about 0.3) at every phase, so a partial-volume weighted
    count of the bright part is the pool's area.
    """
    y = (np.arange(n) - n // 2) / (n / 2)
    yy, xx = np.meshgrid(y, y, indexing="ij")
    cy, cx = CARDIAC.lv_centre
    inside = (yy - cy) ** 2 + (xx - cx) ** 2 < 0.19**2
    v = np.abs(frame[inside])
    area = float(np.clip((v - 0.3) / 0.7, 0, 1).sum())
    return np.sqrt(area / np.pi)


def test_lv_radius_follows_the_cardiac_cycle():
    n, F = 64, 12
    frames = cardiac_phantom(n, F)
    measured = np.array([_lv_blood_radius_px(f, n) for f in frames])
    expected = CARDIAC.blood_radius(np.arange(F) / F) * n / 2
    # Papillary muscles sit inside the pool: the measured radius is a little smaller.
    assert np.corrcoef(measured, expected)[0, 1] > 0.98
    assert measured.max() - measured.min() > 0.25 * measured.max()  # it really beats
    assert np.argmax(measured) == 0 and abs(int(np.argmin(measured)) - 4) <= 1  # ED at 0, ES at 1/3


def test_volume_curve_is_periodic_with_a_realistic_ejection_fraction():
    p = np.linspace(0, 1, 1001)
    v = lv_volume_fraction(p)
    assert v[0] == pytest.approx(1.0) and v[-1] == pytest.approx(1.0)
    assert 0.55 < 1 - v.min() < 0.7  # EF of a healthy adult
    assert np.max(np.abs(np.diff(v))) < 0.01  # smooth: no jumps between knots


def test_cardiac_phase_is_smooth_and_not_trivial():
    f = cardiac_phantom(64, 1)[0]
    body = np.abs(f) > 0.2
    ph = np.angle(f)
    assert np.ptp(ph[body]) > 0.5
    gy = np.abs(np.diff(ph, axis=0))[body[1:] & body[:-1]]
    assert np.percentile(gy, 99) < 0.2  # radians per pixel: no wraps, no jumps


# ---------------------------------------------------------------------------------- DCE


def test_dce_curves_peak_in_physiological_order():
    frames, curves, masks = dce_phantom(64, 16)
    assert frames.shape == (16, 64, 64) and frames.dtype == np.complex64
    peak = {k: int(np.argmax(v)) for k, v in curves.items()}
    assert 1 <= peak["aorta"] < peak["portal_vein"] < peak["liver"]
    assert peak["liver"] >= 12  # slow uptake: still rising late
    for name, v in curves.items():
        assert v.shape == (16,) and v[0] == v.min(), name  # the series starts before the bolus
    assert curves["aorta"].max() > curves["portal_vein"].max() > curves["liver"].max()


def test_dce_roi_masks_are_exact_disjoint_and_match_the_curves():
    ph = dce_phantom(64, 8, seed=1)
    total = np.zeros((64, 64), int)
    for name, m in ph.masks.items():
        assert m.dtype == bool and m.sum() >= 4, name
        total += m
        mean = np.abs(ph.frames[:, m]).mean(axis=1)
        np.testing.assert_allclose(mean, ph.curves[name], rtol=1e-4, err_msg=name)
    assert total.max() == 1
    assert ph.times_s.shape == (8,) and np.all(np.diff(ph.times_s) > 0)


def test_dce_frame_seconds_stretch_time():
    fast = dce_phantom(32, 16, frame_seconds=2.0).curves["aorta"]
    slow = dce_phantom(32, 16, frame_seconds=8.0).curves["aorta"]
    assert np.argmax(fast) > np.argmax(slow)


# ---------------------------------------------------------------------------------- coils


def test_birdcage_maps_normalised_falloff_and_phase():
    m = birdcage_maps(4, (40, 48))
    assert m.shape == (4, 40, 48) and m.dtype == np.complex64
    np.testing.assert_allclose((np.abs(m) ** 2).sum(0), 1.0, rtol=1e-5)
    raw = birdcage_maps(4, (40, 48), normalize=False)
    assert np.abs(raw).max() == pytest.approx(1.0)
    # Coil 0 sits at +x (image right): brighter on the right edge than on the left.
    assert np.abs(raw[0, 20, -1]) > 2 * np.abs(raw[0, 20, 0])
    assert np.abs(raw[1, -1, 24]) > 2 * np.abs(raw[1, 0, 24])  # coil 1 at +y (bottom)
    # Phase varies smoothly inside each map and differs between coils.
    assert np.abs(np.angle(m[0] * m[1].conj())).mean() > 0.3
    assert np.abs(np.diff(np.unwrap(np.angle(m[0]), axis=1), axis=1)).max() < 0.5
    # A closer ring gives a stronger fall-off across the image.
    near = birdcage_maps(1, (32, 32), radius=1.1, normalize=False)[0]
    far = birdcage_maps(1, (32, 32), radius=3.0, normalize=False)[0]
    assert np.abs(near[16, -1]) / np.abs(near[16, 0]) > np.abs(far[16, -1]) / np.abs(far[16, 0])


def test_birdcage_rejects_nonsense():
    with pytest.raises(ValueError, match="n_coils must be >= 1, got 0"):
        birdcage_maps(0, (8, 8))


# ------------------------------------------------------------------------- acquisition


def test_simulated_samples_follow_the_contract_sum():
    """Frame f's spokes are frame f's image through the maps (explicit sum, no noise)."""
    rng = np.random.default_rng(0)
    frames = (rng.standard_normal((3, 16, 16)) + 1j * rng.standard_normal((3, 16, 16))).astype(
        np.complex64
    )
    cfg = SimulationConfig(coils=2, spokes_per_frame=4, noise=0.0)
    d = simulate_images(frames, cfg)
    assert d.kspace.shape == (2, 12, 32) and d.trajectory.shape == (12, 32, 2)
    for f in range(3):
        s = slice(4 * f, 4 * f + 4)
        ref = direct_forward(frames[f], d.trajectory[s].reshape(-1, 2), d.coil_maps)
        got = d.kspace[:, s].reshape(2, -1)
        assert np.linalg.norm(got - ref) / np.linalg.norm(ref) < 1e-3


def test_noise_level_is_relative_to_the_signal_rms():
    frames = cardiac_phantom(32, 2)
    clean = simulate_images(frames, SimulationConfig(coils=2, spokes_per_frame=8, noise=0.0))
    noisy = simulate_images(
        frames, SimulationConfig(coils=2, spokes_per_frame=8, noise=0.1, seed=5)
    )
    rms = np.sqrt(np.mean(np.abs(clean.kspace) ** 2))
    ratio = np.sqrt(np.mean(np.abs(noisy.kspace - clean.kspace) ** 2)) / rms
    assert ratio == pytest.approx(0.1, rel=0.05)


def test_user_series_frames_and_resize():
    frames = np.abs(cardiac_phantom(32, 5)).astype(np.float32)
    d = simulate_images(
        frames, SimulationConfig(size=24, frames=3, coils=2, spokes_per_frame=5, noise=0)
    )
    assert d.reference.shape == (3, 24, 24) and d.reference.dtype == np.float32
    assert d.image_shape == (24, 24) and d.n_spokes == 15 and d.n_readout == 48
    assert d.attrs["phantom"] == "images"


def test_dce_phantom_file_carries_rois_through_write_and_read(tmp_path):
    cfg = SimulationConfig(size=32, frames=6, coils=2, spokes_per_frame=8)
    d = simulate_phantom("dce", cfg)
    p = tmp_path / "dce.h5"
    write_kspace_h5(p, d)
    back = read_kspace_h5(p)
    rois = stored_rois(back)
    assert set(rois) == {"aorta", "portal_vein", "liver", "spleen", "kidneys"}
    for name, (mask, curve) in rois.items():
        assert mask.shape == (32, 32) and mask.dtype == bool and curve.shape == (6,)
        np.testing.assert_allclose(
            np.abs(back.reference[:, mask]).mean(1), curve, rtol=1e-4, err_msg=name
        )
    assert back.attrs["phantom"] == "dce" and back.spokes_per_frame == 8


# -------------------------------------------------------------------------------- CLI


def test_cli_simulate_cardiac_and_no_coil_maps(tmp_path, capsys):
    out = tmp_path / "c.h5"
    args = [
        "simulate",
        "cardiac",
        "--out",
        str(out),
        "--size",
        "32",
        "--frames",
        "4",
        "--coils",
        "3",
        "--spokes-per-frame",
        "5",
        "--readout-oversampling",
        "1.5",
        "--noise",
        "0.02",
        "--seed",
        "2",
    ]
    assert main(args) == 0
    d = load_kspace(out)
    assert d.kspace.shape == (3, 20, 48) and d.reference.shape == (4, 32, 32)
    assert d.coil_maps.shape == (3, 32, 32)
    assert d.attrs["phantom"] == "cardiac" and "cardiac" in d.attrs["description"]
    assert d.attrs["noise_level"] == pytest.approx(0.02) and d.attrs["seed"] == 2
    out2 = tmp_path / "c2.h5"
    assert main(args[:3] + [str(out2)] + args[4:] + ["--no-coil-maps"]) == 0
    d2 = load_kspace(out2)
    assert d2.coil_maps is None
    np.testing.assert_array_equal(d.kspace, d2.kspace)
    assert "-> " in capsys.readouterr().err


def test_cli_simulate_dce_writes_rois(tmp_path):
    out = tmp_path / "d.h5"
    assert (
        main(
            ["simulate", "dce", "--out", str(out), "--size", "32", "--frames", "6", "--coils", "2"]
        )
        == 0
    )
    with h5py.File(out) as f:
        assert f["roi/aorta/mask"].shape == (32, 32) and f["roi/portal_vein/curve"].shape == (6,)
        assert f.attrs["spokes_per_frame"] == 34  # the paper's DCE binning by default
        assert f["kspace"].shape == (2, 6 * 34, 64)


@pytest.mark.parametrize("suffix", [".npy", ".h5"])
def test_cli_simulate_user_series(tmp_path, suffix):
    frames = cardiac_phantom(24, 3)
    src = tmp_path / f"series{suffix}"
    if suffix == ".npy":
        np.save(src, frames)
    else:
        with h5py.File(src, "w") as f:
            f["my_frames"] = frames
    out = tmp_path / "o.h5"
    rc = main(
        ["simulate", str(src), "--out", str(out), "--coils", "2", "--spokes-per-frame", "4"]
        + (["--dataset", "my_frames"] if suffix == ".h5" else [])
    )
    assert rc == 0
    d = load_kspace(out)
    np.testing.assert_array_equal(d.reference, frames)
    assert d.attrs["source_images"].endswith(src.name)


def test_cli_simulate_bad_series_is_one_line(tmp_path, capsys):
    src = tmp_path / "bad.npy"
    np.save(src, np.zeros((2, 3, 4, 5)))
    out = tmp_path / "o.h5"
    assert main(["simulate", str(src), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "bad.npy" in err and "3 dimensions" in err
    assert not out.exists()
    assert main(["simulate", "nothing-like-this", "--out", str(out)]) == 2
    assert "expected a phantom" in capsys.readouterr().err


# ----------------------------------------------------------------------------- samples


def test_cardiac_sample_is_a_small_contract_file():
    d = cardiac_sample(n=32, n_frames=4, coils=2)
    assert d.kspace.shape == (2, 52, 64) and d.reference.shape == (4, 32, 32)
    assert d.spokes_per_frame == 13 and d.source


def test_shipped_sample_is_small_complete_and_scoreable():
    p = sample_path()
    assert p.is_file() and p.stat().st_size < 5e6
    d = load_kspace(p)
    cfg = SAMPLE_CONFIG
    assert d.spokes_per_frame == 34 and d.n_coils == cfg.coils
    assert d.reference.shape == (cfg.frames, cfg.size, cfg.size)
    rois = stored_rois(d)
    assert {"aorta", "portal_vein", "liver"} <= set(rois)
    # The gridding baseline already sees the bolus: its aorta curve tracks the truth.
    from dainr import reconstruct
    from dainr.metrics import roi_curve

    rec = reconstruct(d, "nufft", device="cpu")
    for name in ("aorta", "portal_vein", "liver"):
        mask, truth = rois[name]
        curve = roi_curve(rec.frames, mask)
        assert np.corrcoef(curve, truth)[0, 1] > 0.9, name


def test_shipped_sample_is_rebuilt_by_its_command(tmp_path):
    from dainr.simulate.make_sample import main as make

    assert make(["--out", str(tmp_path / "s.h5")]) == 0
    new, old = load_kspace(tmp_path / "s.h5"), load_kspace(sample_path())
    np.testing.assert_allclose(new.reference, old.reference, atol=1e-6)
    step = old.attrs["kspace_quantization_step"]
    assert np.abs(new.kspace - old.kspace).max() <= 2 * step  # same up to a rounding flip
    assert new.attrs == old.attrs


# ------------------------------------------------------------------------- real anatomy


def _real_cine_or_skip():
    from dainr.errors import InputError
    from dainr.simulate.realistic import find_cine

    try:
        return find_cine()
    except InputError:
        pytest.skip("the real cine sax_cine_data25.mat is not beside this checkout")


def test_loop_array_maps_are_normalised_seeded_and_not_a_birdcage():
    from dainr.simulate.coils import loop_array_maps

    m = loop_array_maps(12, (48, 48), seed=1)
    assert m.shape == (12, 48, 48) and m.dtype == np.complex64
    assert np.allclose(np.sqrt((np.abs(m) ** 2).sum(0)), 1, atol=1e-4)
    assert np.array_equal(m, loop_array_maps(12, (48, 48), seed=1))
    assert not np.allclose(m, loop_array_maps(12, (48, 48), seed=2))
    # Each coil sees most near its own place: the brightest pixels of different coils differ.
    peaks = {int(np.argmax(np.abs(c))) for c in m}
    assert len(peaks) >= 10
    # Not the birdcage's closed form: the smooth perturbation and Biot-Savart fall-off differ.
    assert np.abs(np.abs(m) - np.abs(birdcage_maps(12, (48, 48)))).mean() > 0.02


def test_cine_case_is_the_real_anatomy_sampled_consistently():
    _real_cine_or_skip()
    from dainr.simulate.realistic import cine_case, load_real_cine

    d = cine_case(spokes_per_frame=5, coils=4, size=48, frames=3, noise=0.0, seed=0)
    mag = load_real_cine(None, 48)[:3]
    assert d.reference.shape == (3, 48, 48) and np.allclose(np.abs(d.reference), mag, atol=1e-5)
    assert d.kspace.shape == (4, 15, 96) and d.coil_maps.shape == (4, 48, 48)
    # Phase is smooth but present (a real-valued image would flatter the methods).
    ph = np.angle(d.reference[0][mag[0] > 0.3])
    assert ph.std() > 0.05
    # The samples are the coil images' NUFFT: the direct sum agrees at a few spokes.
    om = d.trajectory[:2].reshape(-1, 2)
    ref = direct_forward(d.reference[0], om, d.coil_maps)
    assert np.allclose(d.kspace[:, :2].reshape(4, -1), ref, rtol=0, atol=2e-3 * np.abs(ref).max())
    no = cine_case(spokes_per_frame=5, coils=4, size=48, frames=3, with_maps=False)
    assert no.coil_maps is None and np.allclose(no.extra["truth/coil_maps"], d.coil_maps)
    assert "yhao-z/GIRAF-3d-fast" in d.attrs["source_images"]


def test_perfusion_case_curves_follow_the_bolus_order_and_masks_match():
    _real_cine_or_skip()
    from dainr.metrics import roi_curve
    from dainr.simulate.realistic import PERFUSION_ROIS, perfusion_case

    d = perfusion_case(spokes_per_frame=4, coils=2, size=96, frames=30, noise=0.0)
    rois = stored_rois(d)
    assert set(rois) == set(PERFUSION_ROIS)
    peaks = {}
    for name, (mask, curve) in rois.items():
        assert mask.sum() >= 5, name
        assert np.allclose(roi_curve(d.reference, mask), curve, rtol=1e-4)
        peaks[name] = int(np.argmax(curve))
    assert peaks["rv"] < peaks["lv"] <= peaks["myocardium"]  # RV, then LV after the lungs
    lv = rois["lv"][1]
    assert lv.max() > 5 * lv[0]  # blood goes from dark to bright
    my = rois["myocardium"][1]
    assert 1.3 < my.max() / my[0] < 5  # the wall enhances, far less than the blood
    # Masks are disjoint.
    m = [rois[k][0] for k in PERFUSION_ROIS]
    assert not (m[0] & m[1]).any() and not (m[1] & m[2]).any() and not (m[0] & m[2]).any()


def test_cli_simulate_real_cases(tmp_path):
    path = _real_cine_or_skip()
    out = tmp_path / "c.h5"
    rc = main(
        [
            "simulate",
            "cine-real",
            "--out",
            str(out),
            "--size",
            "32",
            "--frames",
            "2",
            "--coils",
            "3",
            "--spokes-per-frame",
            "5",
            "--image",
            str(path),
            "--no-coil-maps",
        ]
    )
    assert rc == 0
    d = read_kspace_h5(out)
    assert d.kspace.shape == (3, 10, 64) and d.coil_maps is None
    assert d.attrs["phantom"] == "cine-real" and "truth/coil_maps" in d.extra
    out2 = tmp_path / "p.h5"
    assert (
        main(
            [
                "simulate",
                "perfusion-real",
                "--out",
                str(out2),
                "--size",
                "48",
                "--frames",
                "6",
                "--coils",
                "2",
            ]
        )
        == 0
    )
    p = read_kspace_h5(out2)
    assert p.spokes_per_frame == 16 and set(stored_rois(p)) == {"rv", "lv", "myocardium"}
