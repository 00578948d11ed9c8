"""ISMRMRD input: files written here with the ``ismrmrd`` package itself (not the project's
writer), the conventions of docs/raw-input.md checked against explicit sums, and every
broken case -> one line naming the file and the problem."""

from __future__ import annotations

import logging

import h5py
import ismrmrd
import ismrmrd.xsd as x
import numpy as np
import pytest

from dainr.errors import InputError
from dainr.io import is_raw_file, load_kspace, write_kspace_h5
from dainr.io.ismrmrd import partitions_to_slices, read_ismrmrd
from dainr.metrics import robust_psnr
from dainr.physics.sampling import sample_coil_images
from dainr.prepare import prepare_series
from tests.conftest import gaussian_coils, make_phantom_data, moving_disc_series


def header(nx, ny, nz=1, n_read=None, coils=4, kind="radial", n_slices=1, fov=(240.0, 240.0, 8.0)):
    def space(mx):
        return x.encodingSpaceType(
            matrixSize=x.matrixSizeType(x=mx, y=ny, z=nz),
            fieldOfView_mm=x.fieldOfViewMm(x=fov[0], y=fov[1], z=fov[2]),
        )

    enc = x.encodingType(
        encodedSpace=space(n_read or 2 * nx),
        reconSpace=space(nx),
        encodingLimits=x.encodingLimitsType(
            kspace_encoding_step_2=x.limitType(minimum=0, maximum=nz - 1, center=nz // 2),
            slice=x.limitType(minimum=0, maximum=n_slices - 1, center=0),
        ),
        trajectory=x.trajectoryType(kind),
    )
    hdr = x.ismrmrdHeader(
        experimentalConditions=x.experimentalConditionsType(H1resonanceFrequency_Hz=63_500_000),
        acquisitionSystemInformation=x.acquisitionSystemInformationType(receiverChannels=coils),
        encoding=[enc],
    )
    return x.ToXML(hdr)


def cycles(traj_rad: np.ndarray) -> np.ndarray:
    """contract (y, x) rad/pixel -> ISMRMRD (kx, ky) cycles/pixel."""
    return np.stack([traj_rad[..., 1], traj_rad[..., 0]], -1).astype(np.float32) / (2 * np.pi)


def write_mrd(path, xml, spokes, *, noise=None, extra_flagged=0, units=1.0, with_traj=True):
    """``spokes``: list of (data [C, R], traj cycles [R, 2] or None, e1, e2, slice)."""
    with ismrmrd.Dataset(str(path), "dataset", create_if_needed=True) as ds:
        ds.write_xml_header(xml)
        for n in noise if noise is not None else []:
            a = ismrmrd.Acquisition.from_array(n)
            a.set_flag(ismrmrd.ACQ_IS_NOISE_MEASUREMENT)
            ds.append_acquisition(a)
        for _ in range(extra_flagged):  # a navigator that must not be read as data
            a = ismrmrd.Acquisition.from_array(np.full_like(spokes[0][0], 1e6))
            a.set_flag(ismrmrd.ACQ_IS_NAVIGATION_DATA)
            ds.append_acquisition(a)
        for data, traj, e1, e2, sl in spokes:
            t = traj * units if (with_traj and traj is not None) else None
            a = ismrmrd.Acquisition.from_array(data.astype(np.complex64), t)
            a.idx.kspace_encode_step_1 = e1
            a.idx.kspace_encode_step_2 = e2
            a.idx.slice = sl
            ds.append_acquisition(a)


def mrd_of(data, path, **kw):
    """A contract KSpaceData written as a 2-D radial ISMRMRD file."""
    ny, nx = data.image_shape
    t = cycles(data.trajectory)
    spokes = [(data.kspace[:, s], t[s], s, 0, 0) for s in range(data.n_spokes)]
    write_mrd(path, header(nx, ny, n_read=data.n_readout, coils=data.n_coils), spokes, **kw)
    return path


def gridding_psnr(source, spf, maps) -> float:
    d = load_kspace(source) if not hasattr(source, "kspace") else source
    prep = prepare_series(d, spf, coil_maps=maps, device="cpu")
    g = (prep.gridding / prep.scale).numpy()
    return float(np.mean(robust_psnr(g, REF)))


REF = None


@pytest.fixture(scope="module")
def phantom():
    global REF
    data = make_phantom_data(n=32, n_frames=6, n_coils=4, spokes_per_frame=13, noise=0.01)
    REF = data.reference
    return data


@pytest.mark.parametrize("variant", ["cycles", "bart-units", "no-traj"])
def test_2d_ismrmrd_grids_like_the_contract_file(tmp_path, phantom, variant, caplog):
    """Acceptance: gridding of a 2-D ISMRMRD file scores as the same data in the contract .h5."""
    h5 = tmp_path / "c.h5"
    write_kspace_h5(h5, phantom)
    kw = {"units": 32.0} if variant == "bart-units" else {}
    if variant == "no-traj":
        kw["with_traj"] = False
    mrd = mrd_of(phantom, tmp_path / "c.mrd", **kw)
    with caplog.at_level(logging.INFO, logger="dainr.io.ismrmrd"):
        d = load_kspace(mrd)
    if variant == "bart-units":
        assert "rescaled" in caplog.text
    if variant == "no-traj":
        assert "golden-angle" in caplog.text
    np.testing.assert_allclose(d.trajectory, phantom.trajectory, atol=2e-5)
    np.testing.assert_allclose(d.kspace, phantom.kspace, rtol=0, atol=1e-6)
    p_h5 = gridding_psnr(h5, 13, phantom.coil_maps)
    p_mrd = gridding_psnr(d, 13, phantom.coil_maps)
    assert p_h5 > 15  # a real image, not noise
    assert abs(p_mrd - p_h5) <= 0.1, (p_mrd, p_h5)


def test_partitions_to_slices_is_the_centred_inverse_dft():
    rng = np.random.default_rng(0)
    for nz in (4, 5):
        m = rng.standard_normal((nz, 3)) + 1j * rng.standard_normal((nz, 3))
        c = nz // 2
        explicit = np.stack(
            [
                sum(m[p] * np.exp(2j * np.pi * (p - c) * (z - c) / nz) for p in range(nz)) / nz
                for z in range(nz)
            ]
        )
        np.testing.assert_allclose(partitions_to_slices(m), explicit, atol=1e-6)


@pytest.mark.parametrize("nz", [4, 3])
def test_stack_of_stars_slices_in_order_match_direct_per_slice_gridding(tmp_path, nz):
    """Acceptance: every slice's gridding equals a direct reconstruction of that slice, in order."""
    n, F, C, spf = 24, 2, 3, 12
    maps = gaussian_coils(C, n)
    slices_k, refs = [], []
    for z in range(nz):
        frames = moving_disc_series(n, F) * (1 + z) + (z == 1) * 0.5  # slices that differ
        frames = np.roll(frames, 3 * z, axis=-1)
        k, traj = sample_coil_images(frames[:, None] * maps[None], spf)
        slices_k.append(k)
        refs.append(frames)
    slices_k = np.stack(slices_k)  # [Z, C, S, R]
    c = nz // 2
    # the signal model of raw-input.md, written as the explicit sum over z
    parts = np.stack(
        [
            sum(slices_k[z] * np.exp(-2j * np.pi * (p - c) * (z - c) / nz) for z in range(nz))
            for p in range(nz)
        ]
    )
    t = cycles(traj)
    spokes = [(parts[p, :, s], t[s], s, p, 0) for s in range(traj.shape[0]) for p in range(nz)]
    path = tmp_path / "sos.mrd"
    write_mrd(path, header(n, n, nz=nz, n_read=traj.shape[1], coils=C, kind="goldenangle"), spokes)
    vol = read_ismrmrd(path)
    assert vol.layout == "stack-of-stars" and vol.n_slices == nz
    assert vol.pixel_size_mm == pytest.approx((8.0 / nz, 10.0, 10.0))
    for z in range(nz):
        np.testing.assert_allclose(vol.kspace[z], slices_k[z], atol=1e-4 * np.abs(slices_k).max())
        got = prepare_series(vol.slice(z), spf, coil_maps=maps, device="cpu")
        direct = prepare_series(make_data(slices_k[z], traj, n), spf, coil_maps=maps, device="cpu")
        g, d = (got.gridding / got.scale).numpy(), (direct.gridding / direct.scale).numpy()
        np.testing.assert_allclose(g, d, atol=1e-3 * np.abs(d).max())
        # and that slice is the right one: closest to its own truth
        corr = [np.corrcoef(np.abs(g).ravel(), np.abs(r).ravel())[0, 1] for r in refs]
        assert int(np.argmax(corr)) == z


def make_data(k, traj, n):
    from dainr.data import KSpaceData

    return KSpaceData(kspace=k.astype(np.complex64), trajectory=traj, image_shape=(n, n))


def test_multislice_noise_prewhitening_and_skipped_scans(tmp_path, caplog):
    rng = np.random.default_rng(1)
    C, R, S = 4, 32, 40
    mix = np.eye(C) + 0.6 * rng.standard_normal((C, C))

    def noise(n):
        return mix @ (rng.standard_normal((C, n)) + 1j * rng.standard_normal((C, n)))

    from dainr.physics.trajectory import golden_angle_trajectory

    t = cycles(golden_angle_trajectory(S, R))
    spokes = [(noise(R), t[s], s, 0, sl) for sl in range(2) for s in range(S)]
    path = tmp_path / "ms.h5"
    write_mrd(
        path,
        header(16, 16, n_read=R, coils=C, n_slices=2),
        spokes,
        noise=[noise(256) for _ in range(8)],
        extra_flagged=2,
    )
    assert is_raw_file(path)
    with caplog.at_level(logging.INFO, logger="dainr.io.ismrmrd"):
        vol = read_ismrmrd(path)
    assert "navigation" in caplog.text
    assert vol.layout == "multi-slice" and vol.n_slices == 2 and vol.n_spokes == S
    assert vol.attrs["noise_prewhitened"]
    y = vol.kspace.transpose(1, 0, 2, 3).reshape(C, -1)
    cov = y @ y.conj().T / y.shape[1]
    off = np.abs(cov - np.diag(np.diag(cov))).max() / np.abs(np.diag(cov)).mean()
    assert off < 0.1  # whitened: the coils' noise is uncorrelated and of equal level
    assert np.ptp(np.diag(cov).real) / np.diag(cov).real.mean() < 0.15
    with pytest.raises(InputError, match="2 slices"):
        load_kspace(path)  # a volume is not a 2-D file


# ------------------------------------------------------------------ broken files


def _one_line(e: InputError, path) -> str:
    msg = str(e.value)
    assert "\n" not in msg and str(path) in msg
    return msg


def small_spokes(C=2, R=16, S=6, traj=True):
    from dainr.physics.trajectory import golden_angle_trajectory

    t = cycles(golden_angle_trajectory(S, R))
    return [(np.ones((C, R)), t[s] if traj else None, s, 0, 0) for s in range(S)]


def test_cartesian_file_is_refused(tmp_path):
    p = tmp_path / "cart.mrd"
    write_mrd(p, header(8, 8, n_read=16, coils=2, kind="cartesian"), small_spokes(traj=False))
    with pytest.raises(InputError) as e:
        load_kspace(p)
    assert "cartesian" in _one_line(e, p).lower()


def test_no_trajectory_and_no_radial_header_is_refused(tmp_path):
    p = tmp_path / "other.mrd"
    write_mrd(p, header(8, 8, n_read=16, coils=2, kind="other"), small_spokes(traj=False))
    with pytest.raises(InputError) as e:
        load_kspace(p)
    assert "no trajectory" in _one_line(e, p)


def test_mixed_readout_lengths_are_refused(tmp_path):
    p = tmp_path / "mixed.mrd"
    spokes = small_spokes()
    spokes[3] = (np.ones((2, 8)), spokes[3][1][::2], 3, 0, 0)
    write_mrd(p, header(8, 8, n_read=16, coils=2), spokes)
    with pytest.raises(InputError) as e:
        load_kspace(p)
    assert "mixed readout lengths" in _one_line(e, p)


def test_truncated_acquisition_data_is_refused(tmp_path):
    p = tmp_path / "trunc.mrd"
    write_mrd(p, header(8, 8, n_read=16, coils=2), small_spokes())
    with h5py.File(p, "a") as f:  # an acquisition whose samples stop short of its header
        row = f["dataset/data"][2]
        row["data"] = row["data"][:20]
        f["dataset/data"][2] = row
    with pytest.raises(InputError) as e:
        load_kspace(p)
    assert "truncated" in _one_line(e, p)


def test_truncated_file_is_refused(tmp_path):
    p = tmp_path / "cut.mrd"
    write_mrd(p, header(8, 8, n_read=16, coils=2), small_spokes(S=40))
    b = p.read_bytes()
    p.write_bytes(b[: len(b) // 2])
    with pytest.raises(InputError) as e:
        load_kspace(p)
    _one_line(e, p)


def test_missing_spokes_of_a_partition_are_refused(tmp_path):
    from dainr.physics.trajectory import golden_angle_trajectory

    t = cycles(golden_angle_trajectory(6, 16))
    spokes = [
        (np.ones((2, 16)), t[s], s, p, 0) for p in range(2) for s in range(6 if p == 0 else 4)
    ]
    p = tmp_path / "short.mrd"
    write_mrd(p, header(8, 8, nz=2, n_read=16, coils=2), spokes)
    with pytest.raises(InputError) as e:
        read_ismrmrd(p)
    assert "partition 1 has 4 spokes" in _one_line(e, p)


def test_not_an_ismrmrd_file_is_refused(tmp_path):
    p = tmp_path / "x.mrd"
    p.write_bytes(b"hello")
    with pytest.raises(InputError) as e:
        load_kspace(p)
    _one_line(e, p)


@pytest.mark.parametrize(
    "spokes, message",
    [
        (lambda t: [(np.ones((2, 16)), 0 * t[s], s, 0, 0) for s in range(12)], "all zeros"),
        (lambda t: [(np.ones((2, 16)), t[0], s, 0, 0) for s in range(12)], "1 spoke angle"),
    ],
    ids=["all-zero trajectory", "one spoke angle"],
)
def test_a_trajectory_that_is_not_radial_is_refused(tmp_path, spokes, message):
    from dainr.physics.trajectory import golden_angle_trajectory

    p = tmp_path / "flat.mrd"
    write_mrd(p, header(8, 8, n_read=16, coils=2), spokes(cycles(golden_angle_trajectory(12, 16))))
    with pytest.raises(InputError) as e:
        load_kspace(p)
    assert message in _one_line(e, p)
