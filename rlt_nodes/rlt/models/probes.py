"""Linear probes of the privileged tip-to-hole offset: how well features (the RL token, the image features,
proprio) locate the hole, fitted with closed-form ridge regression.

This module owns the ridge fit (`ridge_fit`, also the RL token's goal-row initialization), the probe report both
encoders' diagnostics compute (`probe_report`) and its table (`probe_table`). Frames without the privileged offset
(NaN: datasets built from robot recordings) are left out; with none, there is no probe.
"""

from __future__ import annotations

import numpy as np

from rlt.models.data import Frames

PROBE_TARGETS: tuple[str, ...] = ("x", "y", "yaw")  # columns of DemoEpisode.tip_offset
NEAR_RADIUS = 0.005  # m: "near" frames have the tip this close to the hole axis (SimConfig.handoff_xy_radius)


def ridge_fit(x: np.ndarray, y: np.ndarray, penalty: float) -> tuple[np.ndarray, np.ndarray]:
    """Closed-form ridge regression y ≈ x @ w + b: x float[N, F], y float[N, T] -> (w float64[F, T], b float64[T]).

    `penalty` is added to the diagonal of the centred Gram matrix; solved in float64, in the dual when there are
    fewer samples than features.
    """
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    x_mean, y_mean = x.mean(0), y.mean(0)
    xc, yc = x - x_mean, y - y_mean
    if len(xc) < xc.shape[1]:
        w = xc.T @ np.linalg.solve(xc @ xc.T + penalty * np.eye(len(xc)), yc)
    else:
        w = np.linalg.solve(xc.T @ xc + penalty * np.eye(xc.shape[1]), xc.T @ yc)
    return w, y_mean - x_mean @ w


def probe_report(x_fit: np.ndarray, x_test: np.ndarray, fit_frames: Frames, test_frames: Frames,
                 ridge: float) -> dict[str, float]:
    """Ridge probes of the tip-to-hole offset from features x float[N, F] and, for comparison, from proprio.

    Fitted on `fit_frames`, scored (R²) on `test_frames`, and on its frames near the hole alone. Keys
    probe_r2_<t>, probe_proprio_r2_<t>, probe_near_r2_<t>, probe_proprio_near_r2_<t>, held_out_near_frames, and
    the mean absolute error near the hole in the target's units (m, rad): probe_near_mae_<t>,
    probe_proprio_near_mae_<t>.
    """
    near = np.hypot(test_frames.tip_offset[:, 0], test_frames.tip_offset[:, 1]) <= NEAR_RADIUS  # bool[N]
    report = {"held_out_near_frames": float(near.sum())}
    # frames without the privileged offset (NaN: datasets recorded on a robot) are left out of the probes
    fit_known, known = np.isfinite(fit_frames.tip_offset).all(1), np.isfinite(test_frames.tip_offset).all(1)
    if fit_known.sum() < 2 or known.sum() < 2:
        return report
    features = {"probe": (x_fit, x_test), "probe_proprio": (fit_frames.proprio, test_frames.proprio)}
    for name, (train_x, test_x) in features.items():
        for subset, keep in (("", known), ("near_", near)):
            if subset and near.sum() < 2:
                continue
            r2, mae = ridge_probe(train_x[fit_known], fit_frames.tip_offset[fit_known], test_x[keep],
                                  test_frames.tip_offset[keep], ridge)
            report.update({f"{name}_{subset}r2_{t}": float(v) for t, v in zip(PROBE_TARGETS, r2, strict=True)})
            if subset:
                report.update({f"{name}_{subset}mae_{t}": float(v) for t, v in zip(PROBE_TARGETS, mae, strict=True)})
    return report


def ridge_probe_r2(x_fit: np.ndarray, y_fit: np.ndarray, x_test: np.ndarray, y_test: np.ndarray,
                   ridge: float) -> np.ndarray:
    """R² per target column of `ridge_probe`."""
    return ridge_probe(x_fit, y_fit, x_test, y_test, ridge)[0]


def ridge_probe(x_fit: np.ndarray, y_fit: np.ndarray, x_test: np.ndarray, y_test: np.ndarray,
                ridge: float) -> tuple[np.ndarray, np.ndarray]:
    """Closed-form ridge regression on standardized features; (R², mean absolute error) per target column on the
    test set.

    x float[N, F], y float[N, T] -> (float64[T], float64[T]); R² = 1 − SSE / SST with the test set's own mean.
    """
    x_fit, x_test = np.asarray(x_fit, np.float64), np.asarray(x_test, np.float64)
    y_test = np.asarray(y_test, np.float64)
    mean, std = x_fit.mean(0), x_fit.std(0) + 1e-8
    w, b = ridge_fit((x_fit - mean) / std, y_fit, ridge)
    pred = (x_test - mean) / std @ w + b
    sst = ((y_test - y_test.mean(0)) ** 2).sum(0)
    return 1.0 - ((y_test - pred) ** 2).sum(0) / np.maximum(sst, 1e-300), np.abs(y_test - pred).mean(0)


def probe_table(report: dict[str, float], features: str) -> list[str]:
    """The report lines of `probe_report`'s R² (the probe on `features` and on proprio, all and near the hole), or
    one line saying there is no probe (frames without the privileged tip offset: datasets recorded on a robot)."""
    if f"probe_r2_{PROBE_TARGETS[0]}" not in report:
        return ["  linear probe of the tip-to-hole offset: no probe (these frames carry no privileged tip offset)"]
    near_title = f"near the hole ({int(report['held_out_near_frames'])})"
    lines = [
        "  linear probe R² of the tip-to-hole offset (ridge fit on training episodes, scored on held-out ones)",
        f"    {'':<8} {'all held-out frames':>19}   {near_title:>19}",
        f"    {'target':<8} {features:>9} {'proprio':>9}   {features:>9} {'proprio':>9}",
    ]
    for t in PROBE_TARGETS:
        row = [report.get(f"{name}_r2_{t}", float("nan"))  # nan: no held-out frame near the hole
               for name in ("probe", "probe_proprio", "probe_near", "probe_proprio_near")]
        lines.append(f"    {t:<8} {row[0]:9.3f} {row[1]:9.3f}   {row[2]:9.3f} {row[3]:9.3f}")
    mae = [report.get(f"probe_near_mae_{t}", float("nan")) for t in PROBE_TARGETS]
    lines.append(f"  mean absolute error near the hole ({features}): x {mae[0] * 1e3:.2f} mm, y {mae[1] * 1e3:.2f} mm, "
                 f"yaw {mae[2] * 1e3:.1f} mrad")
    return lines
