"""Held-out spokes against the ground truth, and ensembles' std against the true error.

    python benchmarks/heldout.py [--size 64] [--spokes 13 5] [--seeds 4] [--steps 1000]
                                 [--method dainr] [--json out.json]

On the real short-axis cine (``../shared/data/sax_cine_data25.mat`` through
``benchmarks/dainr_cases.real_cine``: true coil maps, 1% noise) every seed is fitted
once with the engine's default held-out fraction for the method (none since held-out
spokes became opt-in: the tables in benchmarks/README.md were made when it was 5%;
early stopping off so that the whole curve is seen) and a snapshot at every held-out
evaluation, scored against the truth (robust PSNR, mean over frames). From that one run
per seed:

* **oracle**: the evaluated step with the best true score (what the paper chose with
  the ground truth);
* **held-out**: the step the fit returns (best held-out loss), and its distance to
  the oracle in dB (target: within 0.3 dB);
* **last**: the last step of the same run (the fixed step count);
* **early stop P**: where a patience of P evaluations would have stopped, the state
  it would have returned and the steps saved (evaluations do not change the training
  trajectory, so this is exact without another run).

Seed 0 is also fitted without held-out spokes (all spokes, fixed step count, the last
state: what the engine did before held-out spokes), which gives the gain of the
held-out choice and the overhead of the evaluations. The chosen states of all seeds
are the members of an ensemble: the Pearson and Spearman correlation of the per-pixel
std of their magnitudes with the true error of their mean.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from datetime import datetime
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))


def make_case(size: int, frames: int, spokes: int, coils: int, noise: float):
    from dainr_cases import real_cine

    return real_cine(size=size, frames=frames, spokes=spokes, coils=coils, noise=noise, seed=0)


def rpsnr(frames: np.ndarray, ref: np.ndarray) -> float:
    from dainr.metrics import robust_psnr

    return float(robust_psnr(frames, ref).mean())


_LAST: dict = {}


def _keep_last_state() -> None:
    """Score the last state too: the loop's final snapshot is the chosen one, so the
    frames of the last step are taken just before the selection restores the best."""
    from dainr.holdout import Selection
    from dainr.loop import _frames

    if getattr(Selection.choose, "_wrapped", False):
        return
    choose = Selection.choose

    def wrapped(self, steps_done):
        _LAST["frames"] = _frames(self.method) / self.method.prep.scale
        return choose(self, steps_done)

    wrapped._wrapped = True
    Selection.choose = wrapped


def run_seed(data, method: str, overrides: dict, seed: int, every: int | None) -> dict:
    """One fit with held-out spokes, scored at every evaluation."""
    from dainr.holdout import default_every
    from dainr.loop import Done, RunOptions, Snapshot
    from dainr.session import FitSpec, fit_stream

    _keep_last_state()
    steps = overrides.get("steps")
    spec = FitSpec(method=method, overrides=overrides, seed=seed, early_stop=0, holdout_every=every)
    every = every or default_every(steps) if steps else every
    scores: dict[int, float] = {}
    kept: dict[int, np.ndarray] = {}
    result = None
    for m in fit_stream(data, spec, RunOptions(snapshot_every=every)):
        if isinstance(m, Snapshot) and m.step < steps:  # the final snapshot is the chosen state
            scores[m.step] = rpsnr(m.frames, data.reference)
            kept[m.step] = m.frames
        elif isinstance(m, Done):
            result = m.result
    h = result.history
    ev = h[np.isfinite(h[:, 2])]
    last = int(h[-1, 0])
    kept[last] = _LAST["frames"].cpu().numpy()
    scores[last] = rpsnr(kept[last], data.reference)
    return {
        "seed": seed,
        "seconds": result.seconds,
        "steps": last,
        "eval_steps": ev[:, 0].astype(int).tolist(),
        "heldout": ev[:, 2].tolist(),
        "train_loss": h[:, 1].tolist(),
        "scores": {int(k): v for k, v in scores.items()},
        "chosen_step": result.chosen_step,
        "chosen_score": rpsnr(result.frames, data.reference),
        "frames": result.frames,
    }


def analyse(run: dict, patiences=(5, 10, 20)) -> dict:
    steps, held = run["eval_steps"], run["heldout"]
    sc = run["scores"]
    sc[run["chosen_step"]] = run["chosen_score"]  # the chosen state as returned
    last = steps[-1]
    known = [s for s in steps if s in sc]
    oracle = max(known, key=lambda s: sc[s])
    out = {
        "oracle_step": oracle,
        "oracle": sc[oracle],
        "chosen_step": run["chosen_step"],
        "chosen": run["chosen_score"],
        "last": sc.get(last, float("nan")),
        "gap_db": sc[oracle] - run["chosen_score"],
        "early": {},
    }
    for p in patiences:
        best_step, stop = _early(steps, held, p)
        out["early"][p] = {
            "stop": stop,
            "chosen_step": best_step,
            "score": sc.get(best_step, float("nan")),
            "gap_db": sc[oracle] - sc.get(best_step, float("nan")),
            "steps_saved": 1 - stop / last,
        }
    return out


def _early(steps, values, patience) -> tuple[int, int]:
    """(chosen step, stop step) of the loop's rule on an evaluated curve."""
    best, best_step, since = np.inf, None, 0
    for s, v in zip(steps, values):
        if v < best:
            best, best_step, since = v, s, 0
        else:
            since += 1
        if since >= patience and s < steps[-1]:
            return best_step, s
    return best_step, steps[-1]


def run_baseline(data, method: str, overrides: dict, seed: int) -> dict:
    import dainr

    t = time.perf_counter()
    r = dainr.reconstruct(data, method, seed=seed, holdout=0.0, **overrides)
    return {"seconds": time.perf_counter() - t, "score": rpsnr(r.frames, data.reference)}


def ensemble_scores(members: list[np.ndarray], ref: np.ndarray) -> dict:
    """Mean's score, and correlation of the std of magnitudes with the mean's true error."""
    from scipy.stats import spearmanr

    from dainr.metrics import ls_scale

    stack = np.stack(members)
    mean = stack.mean(axis=0)
    std = np.abs(stack).std(axis=0, ddof=1)
    x = np.abs(mean).astype(np.float64)
    a = float((x * np.abs(ref)).sum() / (x * x).sum())  # the LS scale of the mean
    err = np.abs(ls_scale(mean, ref) - np.abs(ref))
    s, e = (a * std).ravel(), err.ravel()
    top = s >= np.quantile(s, 0.9)
    return {
        "mean_score": rpsnr(mean, ref),
        "member_scores": [rpsnr(m, ref) for m in members],
        "pearson": float(np.corrcoef(s, e)[0, 1]),
        "spearman": float(spearmanr(s, e).statistic),
        # mean error where the std is in its top decile, against the mean error elsewhere
        "error_ratio_top_std": float(e[top].mean() / e[~top].mean()),
    }


def _curve(run: dict) -> tuple[dict[int, float], dict[int, float]]:
    """A run's true scores and held-out losses by step."""
    sc = {int(k): v for k, v in run["scores"].items()}
    return sc, {int(k): v for k, v in zip(run["eval_steps"], run["heldout"])}


def table(report: dict, intervals=(20, 40, 60, 100), patience=(3, 5)) -> str:
    """Markdown: per case, the engine's gap to the oracle at several evaluation
    intervals (the recorded curve subsampled) and with early stopping at the engine's
    default interval (``ceil(steps / 20)``)."""
    from dainr.holdout import default_every

    # the engine's interval on the recorded grid (scores every 20 steps)
    grid = report["args"].get("every") or 20
    es_every = max(grid, grid * round(default_every(report["args"]["steps"]) / grid))
    lines = []
    for spokes, case in report["cases"].items():
        runs = case["runs"]
        lines.append(
            f"\n{spokes} spokes/frame, {len(runs)} seeds: oracle (best true robust PSNR of all "
            "scored steps, every 20) minus the chosen state's, mean / max over seeds, dB\n"
        )
        head = "| criterion | " + " | ".join(f"every {i}" for i in intervals)
        head += (
            " | "
            + " | ".join(f"stop P={p} (every {es_every}): gap, steps saved" for p in patience)
            + " |"
        )
        lines += [head, "|" + " --- |" * (1 + len(intervals) + len(patience))]
        row = ["engine"]
        curves = [_curve(run) for run in runs]
        for every in intervals:
            gaps = []
            for sc, vals in curves:
                steps = [s for s in sorted(vals) if s % every == 0 and s in sc]
                pick = min(steps, key=lambda s: vals[s])
                # the oracle: the best of every scored step
                gaps.append(max(sc[s] for s in vals if s in sc) - sc[pick])
            row.append(f"{np.mean(gaps):.2f} / {np.max(gaps):.2f}")
        for p in patience:
            gaps, saved = [], []
            for sc, vals in curves:
                steps = [s for s in sorted(vals) if s % es_every == 0 and s in sc]
                best, stop = _early(steps, [vals[s] for s in steps], p)
                gaps.append(max(sc[s] for s in vals if s in sc) - sc[best])
                saved.append(1 - stop / steps[-1])
            row.append(f"{np.mean(gaps):.2f} / {np.max(gaps):.2f}, {100 * np.mean(saved):.0f}%")
        lines.append("| " + " | ".join(row) + " |")
        base = case.get("baseline")
        if base:
            chosen = [r["analysis"]["chosen"] for r in runs]
            last = [r["analysis"]["last"] for r in runs]
            lines.append(
                f"\nSeed 0: all spokes, fixed {report['args']['steps']} steps, last state: "
                f"{base['score']:.2f} dB; held-out run: chosen {chosen[0]:.2f} dB, last {last[0]:.2f} dB."
            )
        ens = case.get("ensemble")
        if ens:
            lines.append(
                f"Ensemble of {len(runs)} (the chosen states): mean {ens['mean_score']:.2f} dB "
                f"(members {', '.join(f'{x:.2f}' for x in ens['member_scores'])}); std vs true error "
                f"Pearson {ens['pearson']:.2f}, Spearman {ens['spearman']:.2f}; mean error where the std "
                f"is in its top decile / elsewhere: {ens['error_ratio_top_std']:.2f}x"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--frames", type=int, default=25)
    ap.add_argument("--coils", type=int, default=12)
    ap.add_argument("--noise", type=float, default=0.01)
    ap.add_argument("--spokes", type=int, nargs="+", default=[13])
    ap.add_argument("--seeds", type=int, default=4)
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument(
        "--every", type=int, help="held-out evaluation interval (default: the engine's)"
    )
    ap.add_argument("--method", default="dainr")
    ap.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE")
    ap.add_argument("--no-baseline", action="store_true")
    ap.add_argument("--json", type=Path)
    ap.add_argument(
        "--table", type=Path, metavar="JSON", help="only print the markdown tables of a saved run"
    )
    args = ap.parse_args(argv)
    if args.table:
        print(table(json.loads(args.table.read_text())))
        return 0

    from dainr.config import parse_assignments
    from dainr.methods import get_method

    overrides = parse_assignments(get_method(args.method)[1], args.set)
    if args.method != "grasp" or args.steps:
        overrides["steps"] = args.steps
    report = {
        "date": datetime.now().isoformat(timespec="seconds"),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs",
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "cases": {},
    }
    for spokes in args.spokes:
        data = make_case(args.size, args.frames, spokes, args.coils, args.noise)
        case = {"runs": []}
        members = []
        for seed in range(args.seeds):
            run = run_seed(data, args.method, dict(overrides), seed, args.every)
            members.append(run.pop("frames"))
            run["analysis"] = analyse(run)
            case["runs"].append(run)
            a = run["analysis"]
            print(
                f"{spokes} spokes seed {seed}: oracle {a['oracle']:.2f} dB at {a['oracle_step']}, "
                f"held-out {a['chosen']:.2f} at {a['chosen_step']} (gap {a['gap_db']:.2f}), "
                f"last {a['last']:.2f}; {run['seconds']:.0f} s",
                file=sys.stderr,
                flush=True,
            )
        if not args.no_baseline:
            case["baseline"] = run_baseline(data, args.method, dict(overrides), 0)
            print(
                f"{spokes} spokes baseline (no held-out, last step): {case['baseline']['score']:.2f} dB, "
                f"{case['baseline']['seconds']:.0f} s",
                file=sys.stderr,
                flush=True,
            )
        if len(members) > 1:
            case["ensemble"] = ensemble_scores(members, data.reference)
            e = case["ensemble"]
            print(
                f"{spokes} spokes ensemble of {len(members)}: mean {e['mean_score']:.2f} dB, "
                f"std-error pearson {e['pearson']:.3f} spearman {e['spearman']:.3f}",
                file=sys.stderr,
                flush=True,
            )
        report["cases"][str(spokes)] = case
        if args.json:
            args.json.write_text(json.dumps(report, indent=1, default=float))
    print(
        json.dumps(
            {
                k: {kk: vv for kk, vv in c.items() if kk != "runs"}
                for k, c in report["cases"].items()
            },
            indent=1,
            default=float,
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
