import numpy as np
import pytest

from dainr.metrics import (
    motion_mask,
    paper_scores,
    psnr,
    robust_psnr,
    roi_curve,
    score_series,
    ssim,
    temporal_nrmse,
)


def _series():
    rng = np.random.default_rng(0)
    ref = rng.random((5, 16, 16)).astype(np.float32)
    ref[:, 4:8, 4:8] += np.arange(5)[:, None, None]
    return ref


def test_psnr_by_hand():
    a = np.zeros((4, 4))
    b = np.full((4, 4), 0.1)
    assert psnr(a, b, 1.0) == pytest.approx(20.0)


def test_paper_psnr_by_hand_and_invariant_to_gain_and_offset():
    """Paper-style PSNR: each frame min-max normalised, data range 1, 10 log10(1 / MSE)."""
    ref = _series().astype(np.float64)
    rec = np.abs(ref + 0.3 * np.random.default_rng(5).standard_normal(ref.shape))
    p, _ = paper_scores(rec, ref)
    by_hand = []
    for x, r in zip(rec, ref):
        xn = (x - x.min()) / (x.max() - x.min())
        rn = (r - r.min()) / (r.max() - r.min())
        by_hand.append(10 * np.log10(1.0 / np.mean((xn - rn) ** 2)))
    np.testing.assert_allclose(p, by_hand, rtol=1e-12)
    # a * x + b (a > 0) of either series leaves every frame's score unchanged
    np.testing.assert_allclose(paper_scores(3.0 * rec + 0.7, ref)[0], p, rtol=1e-9)
    np.testing.assert_allclose(paper_scores(rec, 0.5 * ref + 2.0)[0], p, rtol=1e-9)


def test_ssim_of_identical_images_is_one_and_drops_with_noise():
    img = _series()[0]
    assert ssim(img, img, 1.0) == pytest.approx(1.0)
    noisy = img + np.random.default_rng(1).normal(0, 0.2, img.shape)
    assert ssim(noisy, img, 1.0) < 0.9


def test_robust_psnr_is_scale_invariant_and_paper_psnr_uses_minmax():
    ref = _series()
    rec = ref + 0.05 * np.random.default_rng(2).standard_normal(ref.shape)
    np.testing.assert_allclose(robust_psnr(3 * rec, ref), robust_psnr(rec, ref), rtol=1e-10)
    p, s = paper_scores(rec, ref)
    assert p.shape == (5,) and np.all(p > 15)


def test_a_static_series_scores_temporal_nrmse_one():
    ref = _series()
    static = np.repeat(ref.mean(0, keepdims=True), 5, axis=0)
    assert temporal_nrmse(static, ref) == pytest.approx(1.0)
    assert temporal_nrmse(ref, ref) == pytest.approx(0.0)
    assert motion_mask(ref)[4:8, 4:8].all()


def test_roi_curve_is_the_mean_magnitude_inside_the_mask():
    ref = _series() * np.exp(1j)
    mask = np.zeros((16, 16), bool)
    mask[2:5, 3:9] = True
    by_hand = [np.abs(ref[f])[2:5, 3:9].mean() for f in range(5)]
    np.testing.assert_allclose(roi_curve(ref, mask), by_hand, rtol=1e-6)


def test_score_series_rejects_shape_mismatch():
    with pytest.raises(ValueError, match="differ in shape"):
        score_series(np.zeros((2, 4, 4)), np.zeros((3, 4, 4)))


@pytest.mark.parametrize("shape, data_range", [((32, 32), 1.0), ((48, 40), 2.5), ((17, 23), 1.0)])
def test_ssim_equals_scikit_image_gaussian_ssim(shape, data_range):
    """The setting papers report: Gaussian weights, sigma 1.5, population covariance."""
    from skimage.metrics import structural_similarity

    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    ref = data_range * (0.5 + 0.4 * np.sin(xx / 3.0) * np.cos(yy / 5.0))
    x = ref + 0.1 * data_range * rng.standard_normal(shape)
    expected = structural_similarity(
        x,
        ref,
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        data_range=data_range,
    )
    assert ssim(x, ref, data_range) == pytest.approx(expected, abs=1e-12)


def test_paper_ssim_is_scikit_images_on_minmax_frames():
    from skimage.metrics import structural_similarity

    ref = _series()
    rec = ref + 0.2 * np.random.default_rng(4).standard_normal(ref.shape)
    _, s = paper_scores(rec, ref)
    norm = lambda a: (a - a.min()) / (a.max() - a.min())  # noqa: E731
    expected = [
        structural_similarity(
            norm(np.abs(a)).astype(np.float64),
            norm(np.abs(b)).astype(np.float64),
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
            data_range=1.0,
        )
        for a, b in zip(rec, ref)
    ]
    np.testing.assert_allclose(s, expected, atol=1e-6)
