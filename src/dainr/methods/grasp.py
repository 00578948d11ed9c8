"""GRASP (Feng et al. 2014): multi-coil SENSE with temporal total variation.

The default solver (``solver="pdhg"``) minimises

    f(x) = 1/2 ||sqrt(W) (A x - y)||^2 + lambda * ||D_t x||_1

with ``A`` the multi-coil radial operator of every frame, ``W`` the density
compensation (the demo's ``MCNUFFT`` weighs samples by ``sqrt(w)``) and ``D_t`` the
forward difference along time, by the preconditioned primal-dual algorithm of Chambolle
and Pock (2011; Pock and Chambolle's diagonal preconditioning, the density weights as
the k-space one, cf. Ong et al. 2019): one NUFFT pair per iteration, the exact
(unsmoothed) L1 norm, and convergence to the model's minimum. Its lambda rule is
``lambda = lambda_scale * pdhg_lambda_fraction * max|E^H y| * ||A^H W A||`` (the
gridding images' peak, as the demo, times the data term's curvature, found by power
iteration), so that it does not depend on the data's scale, the number of coils or
spokes. Measured on the real cine at 13 spokes with true maps, 60 iterations reach BART's
``pics`` temporal-TV result (benchmarks/README.md, "Coil maps and GRASP against BART").

``solver="nlcg"`` is the original MATLAB demo (``demo_Radial_GRASP_cardiac.m`` with
``CSL1NlCg.m``)::

    f(x) = ||sqrt(W) (A x - y)||^2 + lambda * sum sqrt(|D_t x|^2 + mu)

with ``lambda = 0.25 max |E^H y|`` (the gridding images) times a user factor, minimised
by Fletcher-Reeves nonlinear conjugate gradients with a backtracking (Armijo) line
search, restarted from steepest descent at every outer pass. It stops far from the
minimum (3 passes of 9 updates).

For nlcg one :meth:`GraspMethod.step` is one CG update. The data term is quadratic, so
along a search direction ``d`` it is ``phi + a1 t + a2 t^2`` with ``a2 = <d, N d>`` for
the normal operator ``N = A^H W A``: each CG update needs one ``N d`` and no operator
call during the line search. ``N d`` comes from the NUFFT pair or from a Toeplitz
embedding (two FFTs per coil on the doubled grid), whichever is the cheaper on the
backend.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

import torch

from ..physics.normal import ToeplitzNormal
from ..physics.operator import RadialOperator
from ..prepare import PreparedSeries
from .base import Method

log = logging.getLogger(__name__)

#: demo_Radial_GRASP_cardiac.m: ``param.lambda = 0.25*max(abs(recon_nufft(:)))``.
DEMO_LAMBDA_FRACTION = 0.25


@dataclass(frozen=True)
class GraspConfig:
    """GRASP's settings: the primal-dual solver by default, the demo's NLCG as ``solver="nlcg"``.

    lambda rule -- pdhg: ``lambda_scale * pdhg_lambda_fraction * max|E^H y| * ||A^H W A||``;
    nlcg: ``lambda_scale * 0.25 * max|E^H y|`` (the demo's).
    """

    #: user factor on lambda (see the rules above); 1.0 is the default rule
    lambda_scale: float = 1.0
    #: nlcg (the fields down to max_line_search: the demo's values)
    #: demo: ``for n=1:3, recon_cs = CSL1NlCg(recon_cs, param)``
    outer_iterations: int = 3
    #: demo: ``param.nite = 8``; its stop test ``k > nite`` makes each pass nite + 1 updates
    inner_iterations: int = 8
    #: CG updates in all; None: outer x (inner + 1) as the demo (more steps -> more passes)
    steps: int | None = None
    #: CSL1NlCg.m: ``param.l1Smooth = 1e-15`` (mu of the smoothed L1 norm)
    l1_smooth: float = 1e-15
    #: CSL1NlCg.m: Armijo constant ``alpha = 0.01``
    line_search_alpha: float = 0.01
    #: CSL1NlCg.m: backtracking factor ``beta = 0.6``
    line_search_beta: float = 0.6
    #: CSL1NlCg.m: ``maxlsiter = 150``
    max_line_search: int = 150
    #: CSL1NlCg.m: ``gradToll = 1e-3`` on ||search direction|| (here in prepared units)
    grad_tolerance: float = 1e-3
    #: MCNUFFT.m weighs forward and adjoint by sqrt(w): the data term is DCF-weighted.
    #: Unweighted (pdhg), lambda and the primal-dual balance take the unweighted data
    #: term's mean curvature, ||A^H W A|| times sum(1) / sum(w), so that the same
    #: ``pdhg_lambda_fraction`` regularises alike
    dcf_weighted: bool = True
    #: how N = A^H W A is applied: toeplitz, nufft, or auto (toeplitz only where it pays)
    normal: str = "auto"
    #: ``nlcg``: the demo's nonlinear CG on the smoothed objective (passes as above);
    #: ``pdhg``: primal-dual (Chambolle-Pock) on the exact L1 of D_t x with a k-space
    #: (density) preconditioner -- converges to the model's minimum (see the module doc)
    solver: str = "pdhg"
    #: pdhg: iterations when ``steps`` is None (one NUFFT pair each)
    pdhg_iterations: int = 60
    #: pdhg: lambda = lambda_scale * pdhg_lambda_fraction * max|E^H y| * ||A^H W A||
    pdhg_lambda_fraction: float = 0.0003
    #: pdhg: when set, the data's noise raises lambda above this ratio of a gridding
    #: image's noise to its peak (``preparation.noise.image_ratio`` of the output): lambda
    #: is multiplied by max(1, ratio / noise_knee). Off by default: 0.01 gained 1-3 dB on
    #: noisy cine cases but lost 0.3-0.4 dB on the 4-coil perfusion case at 128²
    #: (benchmarks/README.md, "Coil maps and GRASP against BART")
    noise_knee: float | None = None
    #: pdhg: primal-dual balance sigma (dual steps x sigma, primal step / sigma)
    pdhg_sigma: float = 1.0


def noise_factor(noise: dict | None, knee: float | None) -> float:
    """lambda's factor for the data's noise: ``max(1, image_ratio / knee)`` (1 without an
    estimate or a knee)."""
    if knee is None or not noise or noise.get("image_ratio") is None:
        return 1.0
    return max(1.0, float(noise["image_ratio"]) / knee)


def temporal_diff(x: torch.Tensor) -> torch.Tensor:
    """``D_t x``: forward differences along frames, ``[F-1, ny, nx]`` (TV_Temp of the demo)."""
    return x[1:] - x[:-1]


def temporal_diff_adjoint(d: torch.Tensor) -> torch.Tensor:
    """``D_t^H d`` for ``d[F-1, ny, nx]`` -> ``[F, ny, nx]``."""
    out = torch.zeros((d.shape[0] + 1, *d.shape[1:]), dtype=d.dtype, device=d.device)
    out[:-1] -= d
    out[1:] += d
    return out


def _wide(t: torch.Tensor) -> torch.Tensor:
    """``t`` in double precision for reductions (MPS has none: single there)."""
    if t.device.type == "mps":
        return t
    return t.to(torch.complex128 if t.is_complex() else torch.float64)


def _rdot(a: torch.Tensor, b: torch.Tensor) -> float:
    """``Re <a, b>`` accumulated in double precision (the line search compares these)."""
    return float(torch.vdot(_wide(a.flatten()), _wide(b.flatten())).real)


def _choose_normal(mode: str, op: RadialOperator) -> str:
    if mode not in ("auto", "toeplitz", "nufft"):
        raise ValueError(f"GRASP normal={mode!r}: choose auto, toeplitz or nufft")
    if mode != "auto":
        return mode
    # Measured on 2 CPU cores, 128^2, 26 frames, 12 coils, 13 spokes: finufft's NUFFT pair
    # takes 0.15 s against 0.38 s for the Toeplitz FFTs; torchkbnufft's pair takes 2.3 s.
    return "toeplitz" if op.backend.name == "torchkbnufft" else "nufft"


class GraspMethod(Method):
    name = "grasp"

    def __init__(self, prep: PreparedSeries, config: GraspConfig):
        super().__init__(prep, config)
        c = config
        if c.outer_iterations < 1 or c.inner_iterations < 0:
            raise ValueError("GRASP needs outer_iterations >= 1 and inner_iterations >= 0")
        if c.steps is not None and c.steps < 1:
            raise ValueError(f"GRASP steps={c.steps}: must be at least 1 (or None)")
        op = prep.op
        # prep.dcf is zero on held-out samples; unit weights must skip them alike
        ones = torch.ones_like(prep.dcf) if prep.train_mask is None else prep.train_mask
        self._w = prep.dcf if c.dcf_weighted else ones
        if c.solver not in ("nlcg", "pdhg"):
            raise ValueError(f"GRASP solver={c.solver!r}: choose nlcg or pdhg")
        self.normal_mode = _choose_normal(c.normal, op)
        self.pdhg = c.solver == "pdhg"
        if self.pdhg:
            self._init_pdhg()
            return
        self._toeplitz = ToeplitzNormal(op, self._w) if self.normal_mode == "toeplitz" else None
        self.per_pass = c.inner_iterations + 1
        self.n_passes = (
            c.outer_iterations if c.steps is None else math.ceil(c.steps / self.per_pass)
        )
        self.lam = DEMO_LAMBDA_FRACTION * c.lambda_scale * float(prep.gridding.abs().max())
        with torch.no_grad():
            self.x = prep.gridding.clone()
            r = op.forward(self.x) - prep.kspace
            self.phi = float(_wide(self._w[:, None] * r.abs() ** 2).sum())
            # N x - b, kept up to date by linearity: the gradient of the data term is twice it
            self.nxb = op.adjoint(r * self._w[:, None])
        self.g = torch.zeros_like(self.x)
        self.dx = torch.zeros_like(self.x)
        self.t0 = 1.0
        self.inner = 0  # CG updates done in the current pass (the demo's k)
        self.passes_done = 0
        self.f = self.phi + self.lam * self._tv(temporal_diff(self.x))
        log.info(
            "GRASP: lambda %.4g, %d passes of %d updates, normal operator by %s",
            self.lam,
            self.n_passes,
            self.per_pass,
            self.normal_mode,
        )

    # ------------------------------------------------------------------ primal-dual

    def _power(self, w: torch.Tensor, n: int = 12) -> float:
        """Largest eigenvalue of ``A^H diag(w) A`` by power iteration (seeded start)."""
        g = torch.Generator(device="cpu").manual_seed(0)
        x = torch.randn(self.prep.gridding.shape, dtype=torch.complex64, generator=g)
        x = x.to(self.prep.device)
        lam = 1.0
        for _ in range(n):
            x = self.prep.op.normal(x / x.norm(), weights=w)
            lam = float(x.norm())
        return lam

    def _init_pdhg(self) -> None:
        c, prep = self.config, self.prep
        if c.pdhg_iterations < 1 or c.pdhg_sigma <= 0:
            raise ValueError("GRASP pdhg needs pdhg_iterations >= 1 and pdhg_sigma > 0")
        self.normal_mode = "nufft"
        self._toeplitz = None
        with torch.no_grad():
            l_pre = self._power(prep.dcf)
        # lambda follows the data term's curvature. Density weights flatten its spectrum
        # (A^H W A close to identity), so its largest eigenvalue is its scale. Unweighted,
        # the largest eigenvalue is the k-space centre's, many times the mean: lambda
        # from it swamped the data (every frame alike, whatever the fraction). So the
        # unweighted term's scale is the weighted one's times the ratio of their traces.
        l_obj = l_pre if c.dcf_weighted else l_pre * float(self._w.sum() / prep.dcf.sum())
        self.noise_factor = noise_factor(prep.settings.get("noise"), c.noise_knee)
        self.lam = (
            c.lambda_scale
            * c.pdhg_lambda_fraction
            * float(prep.gridding.abs().max())
            * l_obj
            * self.noise_factor
        )
        # Preconditioned step sizes (Pock and Chambolle 2011): data dual steps
        # sigma * dcf / ||A^H dcf A|| make the data block's norm sigma; the TV block
        # (||D_t|| <= 2) gets sigma / 4; then tau = 1 / (2 sigma) meets the condition
        # ||Sigma^1/2 K T^1/2|| <= 1. The density weights are only a preconditioner
        # here: the model's data term is weighted by ``dcf_weighted`` alone.
        # Unweighted, the data term's dual converges at the weighted one's pace only with
        # the primal-dual balance moved by the same trace ratio (weighted: unchanged).
        sigma = c.pdhg_sigma * l_obj / l_pre
        self._s1 = (sigma * prep.dcf / l_pre)[:, None]
        # s1 / w of the prox, kept finite where both are zero (held-out samples, p stays 0)
        self._s1w = sigma / l_pre if c.dcf_weighted else self._s1
        self._s2 = sigma / 4
        self._tau = 1 / (2 * sigma)
        self.x = prep.gridding.clone()
        self.xbar = self.x.clone()
        self.p = torch.zeros_like(prep.kspace)
        self.q = torch.zeros_like(temporal_diff(self.x))
        self.per_pass, self.n_passes, self.passes_done, self.inner = 1, 1, 0, 0
        self.f = self.objective()
        log.info(
            "GRASP (pdhg): lambda %.4g (noise factor %.3g), ||A^H W A|| %.3g, %d iterations",
            self.lam,
            self.noise_factor,
            l_obj,
            self.total_steps,
        )

    def _pdhg_step(self) -> float:
        prep, w = self.prep, self._w[:, None]
        r = prep.op.forward(self.xbar) - prep.kspace
        # prox of the conjugate of 1/2 ||. - y||^2_W, step s1
        self.p = (self.p + self._s1 * r) / (1 + self._s1w)
        q = self.q + self._s2 * temporal_diff(self.xbar)
        self.q = q * (self.lam / q.abs().clamp_min(self.lam))  # onto |q| <= lambda
        x = self.x - self._tau * (prep.op.adjoint(self.p) + temporal_diff_adjoint(self.q))
        self.xbar = 2 * x - self.x
        self.x = x
        # The objective at the previous extrapolated point: free from r (no extra NUFFT).
        self.f = 0.5 * float(_wide(w * r.abs() ** 2).sum()) + self.lam * self._tv(
            temporal_diff(self.xbar)
        )
        return self.f

    @property
    def total_steps(self) -> int:
        c = self.config
        if self.pdhg:
            return c.steps if c.steps is not None else c.pdhg_iterations
        return c.steps if c.steps is not None else c.outer_iterations * self.per_pass

    @property
    def finished(self) -> bool:
        return self.passes_done >= self.n_passes

    def done(self) -> bool:
        # Every pass has ended (its updates ran, or the direction fell below grad_tolerance,
        # or the line search failed): further steps would not move x, so the loop ends.
        return False if self.pdhg else self.finished

    def _normal(self, d: torch.Tensor) -> torch.Tensor:
        if self._toeplitz is not None:
            return self._toeplitz(d)
        return self.prep.op.normal(d, weights=self._w)

    def _tv(self, dxt: torch.Tensor) -> float:
        return float(_wide(torch.sqrt(dxt.abs() ** 2 + self.config.l1_smooth)).sum())

    def _gradient(self) -> torch.Tensor:
        d = temporal_diff(self.x)
        g = 2 * self.nxb
        if self.lam:
            g = g + self.lam * temporal_diff_adjoint(
                d / torch.sqrt(d.abs() ** 2 + self.config.l1_smooth)
            )
        return g

    def objective(self, x: torch.Tensor | None = None) -> float:
        """``f(x)`` evaluated from scratch with the forward operator (for checks).

        pdhg minimises ``1/2 ||A x - y||^2_W + lambda ||D_t x||_1`` (its lambda's rule
        says so); nlcg the demo's ``||A x - y||^2_W + lambda TV_mu``.
        """
        x = self.x if x is None else x
        with torch.no_grad():
            r = self.prep.op.forward(x) - self.prep.kspace
            phi = float(_wide(self._w[:, None] * r.abs() ** 2).sum())
            return (0.5 if self.pdhg else 1.0) * phi + self.lam * self._tv(temporal_diff(x))

    def _end_pass(self) -> None:
        self.inner = 0
        self.passes_done += 1

    def step(self, step: int) -> float:
        if self.pdhg:
            with torch.no_grad():
                return self._pdhg_step()
        if self.finished:
            return self.f
        c = self.config
        with torch.no_grad():
            if self.inner == 0:  # a new CSL1NlCg call: steepest descent, initial step 1
                self.g = self._gradient()
                self.dx = -self.g
                self.t0 = 1.0
            ndx = self._normal(self.dx)
            dxt, ddt = temporal_diff(self.x), temporal_diff(self.dx)
            a1 = 2 * _rdot(self.dx, self.nxb)
            a2 = _rdot(self.dx, ndx)
            slope = abs(_rdot(self.g, self.dx))

            def f_at(t: float) -> float:
                return self.phi + a1 * t + a2 * t * t + self.lam * self._tv(dxt + t * ddt)

            f0, t = f_at(0.0), self.t0
            f1, ls = f_at(t), 0
            while f1 > f0 - c.line_search_alpha * t * slope and ls < c.max_line_search:
                ls += 1
                t *= c.line_search_beta
                f1 = f_at(t)
            if ls == c.max_line_search:
                # The demo returns from CSL1NlCg without moving: the pass ends here.
                log.warning("GRASP line search failed at step %d: pass ends", step + 1)
                self._end_pass()
                self.f = f0
                return f0
            if ls > 2:
                self.t0 *= c.line_search_beta
            elif ls < 1:
                self.t0 /= c.line_search_beta
            self.x += t * self.dx
            self.nxb += t * ndx
            self.phi += a1 * t + a2 * t * t
            self.f = f1
            g1 = self._gradient()
            bk = _rdot(g1, g1) / (_rdot(self.g, self.g) + 2.2e-16)
            self.g = g1
            self.dx = -g1 + bk * self.dx
            self.inner += 1
            if self.inner > c.inner_iterations or float(self.dx.norm()) < c.grad_tolerance:
                self._end_pass()
        return f1

    def current_frames(self) -> torch.Tensor:
        return self.x

    def state_dict(self) -> dict[str, Any]:
        if self.pdhg:
            return {"x": self.x.cpu(), "xbar": self.xbar.cpu(), "p": self.p.cpu(),
                    "q": self.q.cpu(), "f": self.f, "lam": self.lam}  # fmt: skip
        return {
            "x": self.x.cpu(), "nxb": self.nxb.cpu(), "g": self.g.cpu(), "dx": self.dx.cpu(),
            "phi": self.phi, "f": self.f, "t0": self.t0, "inner": self.inner,
            "passes_done": self.passes_done, "lam": self.lam,
        }  # fmt: skip

    def load_state_dict(self, state: dict[str, Any]) -> None:
        dev = self.prep.device
        if self.pdhg:
            for k in ("x", "xbar", "p", "q"):
                setattr(self, k, state[k].to(dev))
            self.f, self.lam = state["f"], state["lam"]
            return
        for k in ("x", "nxb", "g", "dx"):
            setattr(self, k, state[k].to(dev))
        for k in ("phi", "f", "t0", "inner", "passes_done", "lam"):
            setattr(self, k, state[k])

    def release(self) -> None:
        self._toeplitz = None
        self.nxb = self.g = self.dx = torch.zeros(0)
        self.p = self.q = self.xbar = torch.zeros(0)


METHOD = GraspMethod
CONFIG = GraspConfig
