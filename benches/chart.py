#!/usr/bin/env python3
"""Chart of benches/run.sh's results: chart.py latest.tsv chart.png (matplotlib, from the venv
run.sh installs under target/). One group of bars per operation, one bar per configuration, on a
log scale, with the trivial HTTP responder's and the sign-only ceilings as lines and oidc-provider's
mint as its own bar."""
import csv
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

OPS = [("mint", "fleet mint"), ("introspect", "introspection"), ("decide", "decision"),
       ("mixed", "mixed 70/20/10"), ("jwks", "JWKS")]


def main():
    src, dst = sys.argv[1], sys.argv[2]
    rows = list(csv.DictReader(open(src), delimiter="\t"))
    ceilings = {r["config"]: r for r in rows if r["kind"] == "ceiling"}
    peer = next((r for r in rows if r["kind"] == "peer"), None)
    configs, labels = [], {}
    for r in rows:
        if r["kind"] == "jobtoken" and r["config"] not in labels:
            configs.append(r["config"])
            labels[r["config"]] = r["label"]
    value = {(r["config"], r["op"]): float(r["rps"]) for r in rows if r["kind"] == "jobtoken"}

    fig, ax = plt.subplots(figsize=(11, 5.5), dpi=110)
    width = 0.8 / (len(configs) + (1 if peer else 0))
    for i, cfg in enumerate(configs):
        xs, ys = [], []
        for j, (op, _) in enumerate(OPS):
            if (cfg, op) in value:
                xs.append(j + (i - len(configs) / 2) * width + width / 2)
                ys.append(value[(cfg, op)])
        bars = ax.bar(xs, ys, width, label=labels[cfg])
        ax.bar_label(bars, labels=[f"{y / 1000:.1f}k" for y in ys], fontsize=6, rotation=90, padding=2)
    if peer:
        x = 0 + (len(configs) - len(configs) / 2) * width + width / 2
        bars = ax.bar([x], [float(peer["rps"])], width, color="black", label=peer["label"])
        ax.bar_label(bars, labels=[f"{float(peer['rps']) / 1000:.1f}k"], fontsize=6, rotation=90, padding=2)
    styles = {"http": ("tab:red", "--"), "sign": ("tab:purple", ":")}
    for key, r in ceilings.items():
        color, style = styles.get(key, ("grey", "-."))
        ax.axhline(float(r["rps"]), color=color, linestyle=style, linewidth=1.2,
                   label=f"ceiling: {r['label']} ({float(r['rps']) / 1000:.0f}k/s)")
    ax.set_yscale("log")
    ax.set_xticks(range(len(OPS)), [name for _, name in OPS])
    ax.set_ylabel("requests per second (log scale)")
    ax.set_title("jobtoken under wrk on this machine, with its ceilings and a peer (benches/run.sh)")
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.08), ncol=4, frameon=False)
    ax.grid(axis="y", which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(dst)


if __name__ == "__main__":
    main()
