"""Surrogate study: shape x steepness x reset x sharpness mode x seeds, on Randman and DigitEvents.

Reproduces the setting of Zenke & Vogels (Neural Computation 2021, "The remarkable robustness
of surrogate gradient learning..."): Randman with 10 classes, 20 units, 50 steps, a 1-D
manifold; 128 current-based LIF hidden neurons (``Synaptic``, tau_mem 10, tau_syn 5 steps),
a leaky (``LI``) readout trained with max-over-time cross entropy, Adam 2e-3. DigitEvents (the
command line's default data) uses the command line's default model (MLP, 256 LIF with tau 4,
LI readout, max-over-time CE, Adam 2e-3, batch 64, 12 frames).

Steepness is given as ``beta``, the SuperSpike steepness (Zenke & Ganguli 2018), and mapped to
each family's alpha by equal peak height of the derivative (so every family is compared at the
same peak): fast_sigmoid ``alpha = beta`` (peak alpha/2), atan ``alpha = beta`` (peak alpha/2),
sigmoid ``alpha = 2 beta`` (peak alpha/4), triangle ``alpha = beta / 2`` (peak alpha).

Modes of the sharpness (``--modes``):
  fixed      alpha stays at the start value
  learnable  ``learnable=True`` (softplus), alpha in its own Adam group with ``--alpha-lr``
  annealed   ``AlphaSchedule`` exp from ``start / --anneal-factor`` (wide) to ``start``, per epoch
  adaptive   :class:`surrogate_nets.surrogate.Adaptive` from ``start`` with ``--fraction``

Every finished run is appended to ``OUT/results.jsonl`` (one JSON object per line), so an
interrupted study resumes where it stopped: runs already in the file are skipped. At the end a
mean +- sd table (markdown, also ``OUT/table.md``) and two plots are written:
``OUT/acc_vs_steepness.png`` (one panel per family) and ``OUT/alpha_over_epochs.png``.

Examples::

    python benchmarks/surrogate_study.py --quick --out /tmp/study_quick          # seconds
    python benchmarks/surrogate_study.py --out runs/study --workers 2 \\
        --families fast_sigmoid atan sigmoid triangle --steepness 0.05 0.5 2 8 32 128 512 \\
        --resets diff detach --modes fixed learnable annealed adaptive --seeds 0 1 2 --epochs 15
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import sys
import time
from collections import defaultdict

import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

#: multiply beta (SuperSpike steepness) by this to get the family's alpha at equal peak height
PEAK_EQUIVALENT = {"fast_sigmoid": 1.0, "atan": 1.0, "sigmoid": 2.0, "triangle": 0.5,
                   "gaussian": math.sqrt(2 * math.pi) / 2, "exponential": 1.0}
MODES = ("fixed", "learnable", "annealed", "adaptive")
RESETS = ("diff", "detach")


# ------------------------------------------------------------------------------------ data
def load_data(name: str, args):
    """``(x_train [N, T, ...], y_train, x_test, y_test, n_classes)``."""
    from surrogate_nets import data

    if name == "randman":
        kw = dict(nb_classes=10, nb_units=20, nb_steps=50, nb_samples=args.randman_samples,
                  seed=args.data_seed, generator=args.randman_generator)
        tr, te = data.Randman(train=True, **kw), data.Randman(train=False, **kw)
        (xtr, ytr), (xte, yte) = tr.as_tensors(), te.as_tensors()
        nc = 10
    elif name == "digits":
        tr, te = data.DigitEvents(train=True), data.DigitEvents(train=False)
        (xtr, ytr), (xte, yte) = tr.as_tensors(12), te.as_tensors(12)
        xtr, xte = xtr.flatten(2), xte.flatten(2)
        nc = 10
    else:
        raise ValueError(f"dataset must be 'randman' or 'digits', got {name!r}")
    if args.limit:
        g = torch.Generator().manual_seed(0)
        itr = torch.randperm(len(ytr), generator=g)[: args.limit]
        ite = torch.randperm(len(yte), generator=g)[: max(args.limit // 4, 10)]
        xtr, ytr, xte, yte = xtr[itr], ytr[itr], xte[ite], yte[ite]
    return xtr.float(), ytr, xte.float(), yte, nc


# ----------------------------------------------------------------------------------- model
def make_surrogate(cfg: dict, args):
    from surrogate_nets import surrogate

    alpha = cfg["beta"] * PEAK_EQUIVALENT[cfg["family"]]
    mode = cfg["mode"]
    if mode == "learnable":
        return surrogate.get(cfg["family"], alpha=alpha, learnable=True)
    if mode == "adaptive":
        return surrogate.Adaptive(cfg["family"], alpha=alpha, fraction=cfg["fraction"],
                                  momentum=args.momentum)
    return surrogate.get(cfg["family"], alpha=alpha)


def build(cfg: dict, n_in: int, n_out: int, args) -> nn.Module:
    from surrogate_nets import layers
    from surrogate_nets.neurons import LI, LIF, Synaptic

    detach = cfg["reset"] == "detach"
    sg = make_surrogate(cfg, args)
    if cfg["dataset"] == "randman":
        hid = Synaptic(tau=10.0, tau_syn=5.0, surrogate=sg, detach_reset=detach)
        hidden, tau_out = args.hidden, 10.0
    else:
        hid = LIF(tau=4.0, surrogate=sg, detach_reset=detach)
        hidden, tau_out = args.digits_hidden, 4.0
    l1 = nn.Linear(n_in, hidden)
    if cfg["dataset"] == "randman":
        # inputs spike once each: scale the first layer so the hidden layer is active at init
        with torch.no_grad():
            l1.weight.mul_(args.init_gain)
    return layers.Sequential(l1, hid, nn.Linear(hidden, n_out), LI(tau=tau_out))


# ------------------------------------------------------------------------------------- run
def run_one(cfg: dict, args) -> dict:
    """Train one configuration and return its record."""
    torch.set_num_threads(1)
    from surrogate_nets.surrogate import AlphaSchedule

    t0 = time.perf_counter()
    xtr, ytr, xte, yte, nc = DATA_CACHE.setdefault(cfg["dataset"], load_data(cfg["dataset"], args))
    torch.manual_seed(cfg["seed"])
    model = build(cfg, xtr[0, 0].numel(), nc, args)
    sg = model[1].surrogate
    params = [p for n, p in model.named_parameters() if "raw_alpha" not in n]
    groups = [{"params": params}]
    if cfg["mode"] == "learnable":
        groups.append({"params": [sg.raw_alpha], "lr": args.alpha_lr})
    opt = torch.optim.Adam(groups, lr=args.lr)
    sched = None
    if cfg["mode"] == "annealed":
        start = float(sg.alpha.detach())
        sched = AlphaSchedule(model, start / args.anneal_factor, start, max(cfg["epochs"] - 1, 1))
    bs = args.batch_size if cfg["dataset"] == "randman" else args.digits_batch_size
    g = torch.Generator().manual_seed(cfg["seed"])
    ce = nn.CrossEntropyLoss()
    accs, alphas, losses, rates = [], [float(sg.alpha.detach())], [], []
    for epoch in range(cfg["epochs"]):
        model.train()
        perm = torch.randperm(len(ytr), generator=g)
        tot, n, spikes = 0.0, 0, 0.0
        for i in range(0, len(perm), bs):
            idx = perm[i:i + bs]
            xb = xtr[idx].transpose(0, 1).contiguous()
            out = model(xb)
            loss = ce(out.max(0).values, ytr[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if not math.isfinite(loss.item()):
                break
            tot += loss.item() * len(idx)
            n += len(idx)
        if sched is not None:
            sched.step()
        model.eval()
        with torch.no_grad():
            correct = 0
            for i in range(0, len(yte), 512):
                xb = xte[i:i + 512].transpose(0, 1).contiguous()
                h = model[1](model[0](xb))
                spikes += float(h.mean()) * xb.shape[1]
                correct += int((model[3](model[2](h)).max(0).values.argmax(-1) == yte[i:i + 512]).sum())
        accs.append(correct / len(yte))
        losses.append(tot / max(n, 1))
        rates.append(spikes / len(yte))
        model.train()
        alphas.append(float(sg.alpha.detach()))  # (adaptive: takes the pending update of the last batch)
        model.eval()
    return dict(cfg, acc=accs[-1], best_acc=max(accs), accs=accs, alphas=alphas, losses=losses,
                hidden_rate=rates, seconds=time.perf_counter() - t0)


DATA_CACHE: dict = {}


def _worker(payload):
    cfg, args = payload
    try:
        return run_one(cfg, args)
    except Exception as e:  # a failed run is recorded, not fatal to the study
        return dict(cfg, error=f"{type(e).__name__}: {e}")


def key_of(cfg: dict) -> str:
    return json.dumps({k: cfg[k] for k in sorted(cfg)}, sort_keys=True)


def configs(args):
    for ds, fam, beta, reset, mode, seed in itertools.product(
            args.datasets, args.families, args.steepness, args.resets, args.modes, args.seeds):
        yield dict(dataset=ds, family=fam, beta=float(beta), reset=reset, mode=mode, seed=int(seed),
                   epochs=int(args.epochs if ds == "randman" else args.digits_epochs),
                   fraction=float(args.fraction) if mode == "adaptive" else None,
                   alpha_lr=float(args.alpha_lr) if mode == "learnable" else None,
                   hidden=args.hidden if ds == "randman" else args.digits_hidden,
                   samples=args.randman_samples if ds == "randman" else None,
                   limit=args.limit)


# ---------------------------------------------------------------------------------- report
def load_results(path: str) -> list:
    if not os.path.exists(path):
        return []
    out = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line:
                out.append(json.loads(line))
    return out


def table(results: list) -> str:
    """Markdown: one row per (dataset, family, reset, mode), one column per start steepness; cells
    are test accuracy (%) mean +- sd over seeds (sd 0.0 for one seed), with ``(-> b)`` the mean end
    sharpness in SuperSpike units for the modes that move it."""
    groups = defaultdict(list)
    betas = sorted({r["beta"] for r in results})
    for r in results:
        if "error" in r:
            continue
        tag = r["mode"] + (f" q={r['fraction']:g}" if r.get("fraction") is not None else "")
        groups[(r["dataset"], r["family"], r["reset"], tag, r["beta"])].append(r)
    rows = sorted({k[:4] for k in groups})
    lines = ["| data | family | reset | mode | " + " | ".join(f"beta {b:g}" for b in betas) + " |",
             "|" + "---|" * (4 + len(betas))]
    for row in rows:
        cells = []
        for b in betas:
            rs = groups.get(row + (b,), [])
            if not rs:
                cells.append("")
                continue
            a = torch.tensor([100 * r["acc"] for r in rs], dtype=torch.float64)
            sd = float(a.std()) if len(a) > 1 else 0.0
            end = [r["alphas"][-1] / PEAK_EQUIVALENT[r["family"]] for r in rs]
            extra = ""
            if row[3] != "fixed":  # the end sharpness, in SuperSpike units like the columns
                extra = f" (-> {sum(end) / len(end):.3g})"
            cells.append(f"{float(a.mean()):.1f} +- {sd:.1f}{extra}")
        lines.append("| " + " | ".join(row) + " | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plots(results: list, out: str) -> list:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = [r for r in results if "error" not in r]
    written = []
    for ds in sorted({r["dataset"] for r in ok}):
        rs = [r for r in ok if r["dataset"] == ds]
        fams = sorted({r["family"] for r in rs})
        fig, axes = plt.subplots(1, len(fams), figsize=(4.2 * len(fams), 3.4), squeeze=False)
        for ax, fam in zip(axes[0], fams):
            curves = defaultdict(lambda: defaultdict(list))
            for r in rs:
                if r["family"] == fam:
                    q = f" q={r['fraction']:g}" if r.get("fraction") is not None else ""
                    curves[(r["mode"] + q, r["reset"])][r["beta"]].append(100 * r["acc"])
            markers = {"fixed": "o", "learnable": "^", "annealed": "s", "adaptive": "*"}
            for (mode, reset), pts in sorted(curves.items()):
                b = sorted(pts)
                m = [sum(pts[x]) / len(pts[x]) for x in b]
                # fixed: a curve over steepness; the other modes start at b and move: markers only
                ls = ("-" if reset == "diff" else "--") if mode == "fixed" else "none"
                ax.plot(b, m, marker=markers[mode.split()[0]], ls=ls, ms=8 if mode != "fixed" else 5,
                        mfc="none" if reset == "detach" else None, label=f"{mode}, {reset}")
            ax.set_xscale("log")
            ax.set_title(f"{ds}: {fam}")
            ax.set_xlabel("start steepness beta (SuperSpike units)")
            ax.set_ylabel("test accuracy (%)")
            ax.grid(alpha=0.3)
        handles = {}
        for ax in axes[0]:
            for h, lab in zip(*ax.get_legend_handles_labels()):
                handles.setdefault(lab, h)
        fig.legend(list(handles.values()), list(handles.keys()), fontsize=7, loc="center right")
        fig.tight_layout(rect=(0, 0, 0.86, 1))
        p = os.path.join(out, f"acc_vs_steepness_{ds}.png")
        fig.savefig(p, dpi=110)
        plt.close(fig)
        written.append(p)
    moving = [r for r in ok if r["mode"] in ("learnable", "adaptive", "annealed")]
    if moving:
        panels = [(ds, reset) for ds in sorted({r["dataset"] for r in moving}) for reset in RESETS
                  if any(r["dataset"] == ds and r["reset"] == reset for r in moving)]
        fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.8), squeeze=False)
        for ax, (ds, reset) in zip(axes[0], panels):
            for r in moving:
                if r["reset"] == reset and r["dataset"] == ds:
                    ax.plot(range(len(r["alphas"])), [a / PEAK_EQUIVALENT[r["family"]] for a in r["alphas"]],
                            ls={"learnable": ":", "adaptive": "-", "annealed": "--"}[r["mode"]], alpha=0.7,
                            label=f"{r['family']} {r['mode']} b0={r['beta']:g} s{r['seed']}")
            ax.set_yscale("log")
            ax.set_title(f"{ds}, reset: {reset}")
            ax.legend(fontsize=5, ncol=2)
            ax.set_xlabel("epoch")
            ax.set_ylabel("alpha in SuperSpike units (beta)")
            ax.grid(alpha=0.3)
        fig.tight_layout()
        p = os.path.join(out, "alpha_over_epochs.png")
        fig.savefig(p, dpi=110)
        plt.close(fig)
        written.append(p)
    return written


# ------------------------------------------------------------------------------------ main
def parse(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--out", default="runs/surrogate_study")
    ap.add_argument("--datasets", nargs="+", default=["randman"], choices=("randman", "digits"))
    ap.add_argument("--families", nargs="+", default=["fast_sigmoid", "atan", "sigmoid", "triangle"],
                    choices=sorted(PEAK_EQUIVALENT))
    ap.add_argument("--steepness", nargs="+", type=float, default=[0.05, 0.5, 2, 8, 32, 128, 512],
                    help="start steepness beta in SuperSpike units")
    ap.add_argument("--resets", nargs="+", default=list(RESETS), choices=RESETS)
    ap.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    ap.add_argument("--epochs", type=int, default=15, help="Randman epochs")
    ap.add_argument("--digits-epochs", type=int, default=10)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--alpha-lr", type=float, default=0.2, help="Adam lr of a learnable alpha")
    ap.add_argument("--anneal-factor", type=float, default=10.0,
                    help="annealed: alpha goes from start/factor to start")
    ap.add_argument("--fraction", type=float, default=0.2, help="adaptive: target fraction q")
    ap.add_argument("--momentum", type=float, default=0.3, help="adaptive: EMA step in log space")
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--digits-batch-size", type=int, default=64)
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--digits-hidden", type=int, default=256)
    ap.add_argument("--init-gain", type=float, default=3.0, help="Randman: first-layer weight gain")
    ap.add_argument("--randman-samples", type=int, default=1000, help="samples per class (80%% train)")
    ap.add_argument("--randman-generator", default="zenke", choices=("zenke", "sum"))
    ap.add_argument("--data-seed", type=int, default=0)
    ap.add_argument("--limit", type=int, default=None, help="use only N training samples")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--quick", action="store_true", help="a tiny smoke study (seconds)")
    ap.add_argument("--report-only", action="store_true", help="only print the table and plots")
    args = ap.parse_args(argv)
    if args.quick:
        args.families, args.steepness, args.resets = ["fast_sigmoid"], [0.5, 512.0], ["diff"]
        args.modes, args.seeds, args.epochs, args.digits_epochs = ["fixed", "adaptive"], [0], 2, 1
        args.hidden, args.digits_hidden, args.randman_samples, args.limit = 16, 16, 40, 200
    return args


def main(argv=None) -> list:
    args = parse(argv)
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "results.jsonl")
    done = {key_of({k: v for k, v in r.items() if k in CFG_KEYS}) for r in load_results(path)
            if "error" not in r}
    todo = [c for c in configs(args) if key_of(c) not in done]
    if not args.report_only and todo:
        print(f"{len(todo)} runs to do ({len(done)} already in {path}), {args.workers} worker(s)")
        try:
            from tqdm import tqdm
        except ImportError:  # pragma: no cover
            def tqdm(it, **kw):
                return it
        payload = [(c, args) for c in todo]
        with open(path, "a") as f:
            if args.workers > 1:
                import multiprocessing as mp

                with mp.get_context("fork").Pool(args.workers) as pool:
                    for rec in tqdm(pool.imap_unordered(_worker, payload), total=len(todo)):
                        f.write(json.dumps(rec) + "\n")
                        f.flush()
            else:
                for p in tqdm(payload):
                    f.write(json.dumps(_worker(p)) + "\n")
                    f.flush()
    results = [r for r in load_results(path)]
    errors = [r for r in results if "error" in r]
    for r in errors:
        print("failed:", r["error"], {k: r[k] for k in ("dataset", "family", "beta", "mode", "reset")})
    t = table(results)
    with open(os.path.join(args.out, "table.md"), "w") as f:
        f.write(t + "\n")
    print(t)
    for p in plots(results, args.out):
        print("wrote", p)
    return results


CFG_KEYS = ("dataset", "family", "beta", "reset", "mode", "seed", "epochs", "fraction", "alpha_lr",
            "hidden", "samples", "limit")

if __name__ == "__main__":
    torch.set_num_threads(1)
    main()
