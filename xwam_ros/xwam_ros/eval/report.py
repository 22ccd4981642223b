"""A human report of a replay evaluation: Markdown plus PNG plots drawn with OpenCV (matplotlib is not a
dependency)."""
from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np

COLORS = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75),
          (227, 119, 194)]


def line_plot(series: dict, path, title: str, xlabel: str, ylabel: str, size=(640, 360)) -> None:
    w, h = size
    img = np.full((h, w, 3), 255, np.uint8)
    left, right, top, bottom = 70, 20, 30, 45
    vals = [v for ys in series.values() for v in ys if v is not None and math.isfinite(v)]
    n = max((len(ys) for ys in series.values()), default=1)
    lo, hi = (min(vals), max(vals)) if vals else (0.0, 1.0)
    hi = hi if hi > lo else lo + 1.0
    X = lambda i: int(left + (w - left - right) * (i / max(n - 1, 1)))  # noqa: E731
    Y = lambda v: int(h - bottom - (h - top - bottom) * (v - lo) / (hi - lo))  # noqa: E731
    cv2.rectangle(img, (left, top), (w - right, h - bottom), (0, 0, 0), 1)
    for k, (name, ys) in enumerate(series.items()):
        col = COLORS[k % len(COLORS)][::-1]
        pts = [(X(i), Y(v)) for i, v in enumerate(ys) if v is not None and math.isfinite(v)]
        for a, b in zip(pts, pts[1:]):
            cv2.line(img, a, b, col, 2, cv2.LINE_AA)
        cv2.putText(img, name, (left + 8, top + 16 + 16 * k), cv2.FONT_HERSHEY_SIMPLEX, 0.45, col, 1, cv2.LINE_AA)
    font = cv2.FONT_HERSHEY_SIMPLEX
    cv2.putText(img, title, (left, 20), font, 0.55, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(img, xlabel, (w // 2 - 40, h - 10), font, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(img, f"{hi:.3g}", (5, top + 5), font, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(img, f"{lo:.3g}", (5, h - bottom), font, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(img, ylabel, (5, h // 2), font, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.imwrite(str(path), img)


def frames_strip(step, pred, rep, setup, frame_dt: float, path) -> str:
    """Predicted (top) vs recorded (bottom) frames of the static views, one column per future step."""
    times = np.array([s.t for s in rep.steps])
    rows = []
    for v, cam in enumerate(setup.cameras):
        if cam.kind != "static":
            continue
        top, bottom = [], []
        for f in range(1, pred.rgb.shape[1]):
            i = int(np.argmin(np.abs(times - (step.t + f * frame_dt))))
            top.append(pred.rgb[v, f])
            bottom.append(rep.steps[i].built.obs.rgb[v])
        rows += [np.concatenate(top, axis=1), np.concatenate(bottom, axis=1)]
    img = np.concatenate(rows, axis=0)
    img = cv2.resize(img, (img.shape[1] * 2, img.shape[0] * 2), interpolation=cv2.INTER_NEAREST)
    cv2.imwrite(str(path), img[..., ::-1])
    return Path(path).name


def write_report(result: dict, out: Path) -> Path:
    s = result.get("summary", {})
    lines = [f"# Replay evaluation of `{result['bag']}`", "",
             f"* observations rebuilt: {result['observations']} (sync: {result['sync']}), queries: {s.get('queries', 0)}"
             f" every {result['stride']} observations",
             f"* complete: {result['complete']}" + (" (interrupted)" if result.get("interrupted") else ""),
             f"* input problems: {result['input_errors'] or 'none'}"
             + (f" — first: {result['first_input_error']}" if result["first_input_error"] else "")]
    if result.get("partial"):
        lines.append(f"* **partial result**: {result['partial']}")
    for w in result.get("warnings", []):
        lines.append(f"* warning: {w}")
    lines += ["", "| metric | value |", "|---|---|"]
    for k, v in s.items():
        if not isinstance(v, (list, dict)):
            lines.append(f"| {k} | {v if not isinstance(v, float) else f'{v:.4g}'} |")
    if "per_joint_mae" in s:
        lines += ["", "| joint | MAE |", "|---|---|"] + [f"| {j} | {v:.4g} |" for j, v in s["per_joint_mae"].items()]
    if "error_vs_horizon" in s:
        line_plot({"mean |error|": s["error_vs_horizon"]}, out / "error_vs_horizon.png",
                  "action error vs horizon", "horizon step", "abs err")
        lines += ["", "![error vs horizon](error_vs_horizon.png)"]
        per_q = [q["actions"]["mae"] for q in result["queries"] if q.get("actions") and "mae" in q["actions"]]
        line_plot({"MAE": per_q}, out / "error_over_episode.png", "action MAE per query", "query", "MAE")
        lines += ["", "![error over the episode](error_over_episode.png)"]
    chamfers = [[r.get("chamfer_m") for r in q.get("imagination", [])] for q in result["queries"]]
    if any(chamfers):
        line_plot({f"query {i}": c for i, c in enumerate(chamfers[:6])}, out / "chamfer_vs_step.png",
                  "Chamfer distance vs future step", "future step", "m")
        lines += ["", "![chamfer](chamfer_vs_step.png)"]
    strips = [q["frames_png"] for q in result["queries"] if q.get("frames_png")]
    if strips:
        lines += ["", "Predicted (upper row of each pair) vs recorded (lower row) static-camera frames per future step:"]
        lines += [f"![frames]({p})" for p in strips]
    path = out / "report.md"
    path.write_text("\n".join(lines) + "\n")
    return path
