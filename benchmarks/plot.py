"""Optional: one bar per target, this run's ratio against its limit (needs matplotlib)."""

from __future__ import annotations

from pathlib import Path


def plot_ratios(
    measured: dict[str, float], targets: list[tuple[str, str, float, str]], path: Path
) -> Path:
    """Write a PNG of each target's ratio (bar) and limit (tick) to ``path``; return it."""
    try:
        import matplotlib

        matplotlib.use("Agg")  # no display needed
        import matplotlib.pyplot as plt
    except ImportError as missing:
        raise SystemExit(f"--plot needs matplotlib ({missing}): pip install matplotlib") from None
    labels = [label for label, _, _, _ in targets]
    values = [measured[key] / limit for _, key, limit, _ in targets]
    colours = [
        "tab:green"
        if (measured[key] <= limit if sense == "<=" else measured[key] >= limit)
        else "tab:red"
        for _, key, limit, sense in targets
    ]
    figure, axes = plt.subplots(figsize=(8, 0.6 * len(labels) + 1.5))
    axes.barh(labels, values, color=colours)
    axes.axvline(1.0, color="black", linewidth=1)
    axes.set_xlabel("this run's ratio / target limit (1 = on the target)")
    axes.invert_yaxis()
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path
