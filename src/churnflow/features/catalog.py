"""The feature catalogue (Markdown) rendered from the registry, for docs and reports."""

from __future__ import annotations

from collections import Counter

from churnflow.features.formulas import FeatureSpec


def render_catalog(registry: list[FeatureSpec]) -> str:
    """Markdown: a per-family count table, then one table per family (name, dtype, description).

    Deterministic: same registry → same text.
    """
    counts = Counter(s.family for s in registry)
    families = list(dict.fromkeys(s.family for s in registry))
    lines = [
        "# Feature catalogue",
        "",
        f"{len(registry)} features in {len(families)} families, computed at each cutoff T from events with "
        "ts < T only (see docs/features.md).",
        "",
        "| family | features |",
        "|---|---|",
        *[f"| {f} | {counts[f]} |" for f in families],
        "",
    ]
    for family in families:
        lines += [f"## {family}", "", "| name | dtype | description |", "|---|---|---|"]
        lines += [
            f"| `{s.name}` | {s.dtype} | {s.description.replace('|', '/')} |"
            for s in registry
            if s.family == family
        ]
        lines.append("")
    return "\n".join(lines)
