"""Streaming inference: a trained spiking network run one time step at a time with carried state,
optionally with integer weights exported from quantization-aware training, as on a chip.

Training uses whole recordings (multi-step calls ``model(x)`` on ``[T, B, ...]``); a
neuromorphic chip or a live event camera instead delivers one frame at a time and the network
must keep its state (membranes, synaptic currents) between frames. This script

1. trains a small conv SNN (``Conv -> LIF -> MaxPool`` twice, ``Linear -> LI`` readout) with
   ``train.fit`` (checkpoints, ``--resume``) on DigitEvents (embedded, no download; the default)
   or N-MNIST (``--dataset nmnist --data-dir ...``, through tonic);
2. runs the test set frame by frame through :class:`Streamer`, which calls each neuron's
   ``step(x_t, state)`` and carries the states, and checks that the streamed readout equals the
   multi-step run (same predictions, readout membranes equal to float rounding);
3. with ``--bits B``: converts every Conv/Linear to ``QuantConv2d``/``QuantLinear``
   (``from_float``: B-bit weights, LSQ step per output channel), fine-tunes it for
   ``--qat-epochs``, exports the integer weights (``export_int``: codes ``int8`` and steps) to
   ``int_export.pt`` (loads with ``torch.load(weights_only=True)``), reloads that file and streams
   the test set with integer arithmetic in the synapses: the inputs (event counts, then binary
   spikes and their max-pools) are integers, so ``codes (*) x`` is an exact integer sum (checked
   to stay below 2**24, exact in float32) that is scaled by the step once per output channel.
   It reports how many predictions and spikes agree with the fake-quantized multi-step run
   (they differ only where the float rounding of the two summation orders moves a membrane across
   its threshold). The neurons' membranes stay float (a chip would use fixed point).

Writes ``streaming.png``: the readout membrane of one test recording, streamed vs multi-step,
and the accuracy of the running prediction ``argmax_c max_{t' <= t} v_{t', c}`` over the frames
seen so far (how early a streaming decision can be made).

Run::

    python examples/streaming_inference.py                       # DigitEvents, float
    python examples/streaming_inference.py --bits 4 --qat-epochs 2
    python examples/streaming_inference.py --dataset nmnist --data-dir ~/data --limit 2000
"""

from __future__ import annotations

import os
import sys
import time

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _recorded as common  # noqa: E402  (examples/_recorded.py: the shared options)

from surrogate_nets import layers, losses  # noqa: E402
from surrogate_nets.neurons import LI, LIF, BaseNeuron  # noqa: E402
from surrogate_nets.quant import QuantConv2d, QuantLinear  # noqa: E402

SENSORS = {"digits": 20, "nmnist": 34}


def build_model(size: int, channels: int = 8, tau: float = 2.0) -> layers.Sequential:
    """``[T, B, 2, S, S]`` event frames -> ``[T, B, 10]`` readout membrane."""
    c, s = channels, size // 2 // 2
    return layers.Sequential(
        nn.Conv2d(2, c, 3, padding=1), LIF(tau=tau), nn.MaxPool2d(2),
        nn.Conv2d(c, 2 * c, 3, padding=1), LIF(tau=tau), nn.MaxPool2d(2),
        layers.Flatten(), nn.Linear(2 * c * s * s, 10), LI(tau=tau),
    )


class Streamer:
    """Run a :class:`~surrogate_nets.layers.Sequential` one time step at a time.

    ``step(x_t)`` takes one frame batch ``[B, ...]`` and returns the output ``[B, ...]`` of that
    step; every neuron's state is carried from step to step (``neuron.step(x_t, state)``) until
    :meth:`reset`. Stateless layers see ``[B, ...]`` directly; ``layers.Flatten`` flattens the
    per-sample dims. Over ``T`` steps this computes the same as the multi-step ``model(x)``.
    """

    def __init__(self, model: layers.Sequential):
        self.modules = list(model)
        self.reset()

    def reset(self):
        self.states = [None] * len(self.modules)

    def layer(self, i: int, m: nn.Module, x_t: torch.Tensor) -> torch.Tensor:
        return m(x_t)

    @torch.no_grad()
    def step(self, x_t: torch.Tensor) -> torch.Tensor:
        for i, m in enumerate(self.modules):
            if isinstance(m, BaseNeuron):
                x_t, self.states[i] = m.step(x_t, self.states[i])
            elif isinstance(m, layers.Flatten):
                x_t = x_t.flatten(1 + m.start_dim)
            else:
                x_t = self.layer(i, m, x_t)
        return x_t

    @torch.no_grad()
    def run(self, x: torch.Tensor) -> torch.Tensor:
        """Stream all frames of ``x`` ``[T, B, ...]`` from a fresh state; ``[T, B, ...]`` out."""
        self.reset()
        return torch.stack([self.step(x_t) for x_t in x])


class IntegerStreamer(Streamer):
    """A :class:`Streamer` whose Conv/Linear layers use exported integer weights.

    .. math:: y = \\mathrm{step}_c \\cdot \\sum_j \\mathrm{code}_{c,j}\\, x_j + b_c

    with integer inputs ``x`` (event counts, spikes), so the sum is an exact integer.
    """

    def __init__(self, model: layers.Sequential, export: dict):
        super().__init__(model)
        self.export = export

    def layer(self, i, m, x_t):
        ex = self.export.get(str(i))
        if ex is None:
            return m(x_t)
        if not torch.equal(x_t, x_t.round()):
            raise ValueError(f"layer {i}: integer synapses need integer inputs")
        codes = ex["weight"].to(x_t.dtype)
        if isinstance(m, nn.Conv2d):
            acc = F.conv2d(x_t, codes, None, m.stride, m.padding, m.dilation, m.groups)
            shape = (1, -1, 1, 1)
        else:
            acc = F.linear(x_t, codes)
            shape = (1, -1)
        if acc.abs().max() >= 2 ** 24:
            raise OverflowError(f"layer {i}: integer sum beyond float32's exact range")
        step = ex["step"].flatten().view(shape) if ex["step"].numel() > 1 else ex["step"]
        y = acc * step
        return y if ex["bias"] is None else y + ex["bias"].view(shape)


def quantize(model: layers.Sequential, bits: int) -> layers.Sequential:
    """Replace every Conv2d/Linear by its quantized counterpart (``from_float``), in place."""
    for i, m in enumerate(model):
        if isinstance(m, nn.Conv2d):
            model[i] = QuantConv2d.from_float(m, bits=bits)
        elif isinstance(m, nn.Linear):
            model[i] = QuantLinear.from_float(m, bits=bits)
    return model


def export_int(model: layers.Sequential, path) -> dict:
    """Integer codes, steps and biases of the quantized layers, keyed by their index; saved
    with ``torch.save`` (plain tensors: loads with ``weights_only=True``)."""
    out = {}
    for i, m in enumerate(model):
        if isinstance(m, (QuantConv2d, QuantLinear)):
            ex = m.export_int()
            out[str(i)] = {"weight": ex.weight, "step": ex.weight_step, "bias": ex.bias,
                           "bits": torch.tensor(ex.bits)}
    torch.save(out, path)
    return out


def test_batches(test_set, batch_size):
    loader = torch.utils.data.DataLoader(test_set, batch_size=batch_size,
                                         collate_fn=common.data.collate_time_major)
    for x, y in loader:
        yield x, y


@torch.no_grad()
def compare(model, streamer, test_set, args, label: str):
    """Multi-step vs streamed outputs on the test set; returns the streamed traces and labels."""
    model.eval()
    streamed, labels, max_diff, agree, total = [], [], 0.0, 0, 0
    for x, y in test_batches(test_set, 2 * args.batch_size):
        full = model(x)
        step = streamer.run(x)
        max_diff = max(max_diff, (full - step).abs().max().item())
        agree += (full.max(0).values.argmax(-1) == step.max(0).values.argmax(-1)).sum().item()
        total += y.numel()
        streamed.append(step)
        labels.append(y)
    print(f"{label}: streamed vs multi-step on {total} test recordings: predictions agree on "
          f"{agree}/{total}, max |readout difference| = {max_diff:.2e}")
    return torch.cat(streamed, 1), torch.cat(labels), agree, total, max_diff


def running_accuracy(trace, labels):
    """Accuracy of ``argmax_c max_{t' <= t} v`` after each step ``t``: ``[T]``."""
    running = trace.cummax(0).values.argmax(-1)        # [T, N]
    return (running == labels).float().mean(1)


def plot(results, path):
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.6))
    name, (full, step) = results["trace"]
    t = range(1, full.shape[0] + 1)
    for c in range(full.shape[1]):
        line, = a.plot(t, full[:, c], "-", lw=1)
        a.plot(t, step[:, c], "o", ms=3, color=line.get_color())
    a.set(xlabel="time step", ylabel="readout membrane",
          title=f"{name}: multi-step (lines) vs streamed (dots)")
    for label, acc in results["accuracy"].items():
        b.plot(range(1, len(acc) + 1), 100 * acc, "o-", ms=3, label=label)
    b.set(xlabel="frames seen", ylabel="test accuracy (%)", title="running prediction")
    b.legend()
    return common.save_figure(fig, path)


def main(argv=None) -> int:
    ap = common.parser(__doc__.splitlines()[0], time_steps=10, epochs=3, batch_size=64,
                       lr=3e-3, out="runs/streaming")
    ap.add_argument("--dataset", choices=tuple(SENSORS), default="digits")
    ap.add_argument("--channels", type=int, default=8)
    ap.add_argument("--bits", type=int, default=0, help="quantize weights to B bits (0: float)")
    ap.add_argument("--qat-epochs", type=int, default=1, help="fine-tuning epochs after --bits")
    args = ap.parse_args(argv)
    if args.events_per_frame is not None:
        ap.error("streaming here uses a fixed number of frames; --events-per-frame does not apply")
    torch.set_num_threads(1)   # small layers: threads only add overhead (and keep runs exact)
    t0 = time.perf_counter()
    sets = common.open_splits(args.dataset, args.dataset, args)
    if sets is None:
        return 2
    train_set, test_set = sets
    train_loader, test_loader = common.loaders(train_set, test_set, args)

    torch.manual_seed(args.seed)
    model = build_model(SENSORS[args.dataset], args.channels)
    common.fit(model, losses.get("membrane-ce"), train_loader, test_loader, args)
    model.cpu().eval()            # streaming runs on the CPU, one frame batch at a time
    trace, labels, agree, total, diff = compare(model, Streamer(model), test_set, args, "float")
    ok = agree == total and diff < 1e-4
    with torch.no_grad():
        first = model(next(test_batches(test_set, 1))[0])[:, 0]
    results = {"trace": ("float", (first, trace[:, 0])),
               "accuracy": {"float, streamed": running_accuracy(trace, labels)}}

    if args.bits:
        quantize(model, args.bits)
        qargs = common.argparse.Namespace(**dict(vars(args), epochs=args.qat_epochs,
                                                 out=os.path.join(args.out, "quantized")))
        common.fit(model, losses.get("membrane-ce"), train_loader, test_loader, qargs)
        model.cpu().eval()
        qtrace, _, qagree, _, qdiff = compare(model, Streamer(model), test_set, args,
                                              f"{args.bits}-bit fake-quantized")
        ok = ok and qagree == total and qdiff < 1e-4
        path = os.path.join(args.out, "int_export.pt")
        export_int(model, path)
        exported = torch.load(path, weights_only=True)     # a device would load only this
        print(f"wrote {path}: " + ", ".join(
            f"layer {k} {tuple(v['weight'].shape)} {v['weight'].dtype}" for k, v in
            exported.items()))
        itrace, _, iagree, _, idiff = compare(model, IntegerStreamer(model, exported), test_set,
                                              args, f"{args.bits}-bit integer synapses")
        qat = f"(+{args.qat_epochs} QAT epochs)"
        results["accuracy"][f"{args.bits}-bit fake-quant {qat}"] = running_accuracy(qtrace, labels)
        results["accuracy"][f"{args.bits}-bit integer {qat}"] = running_accuracy(itrace, labels)
    for label, acc in results["accuracy"].items():
        print(f"{label}: test accuracy {100 * acc[-1]:.1f}% after all {len(acc)} frames, "
              f"{100 * acc[len(acc) // 2 - 1]:.1f}% after {len(acc) // 2}")
    if common.have_matplotlib():
        print("wrote", plot(results, os.path.join(args.out, "streaming.png")))
    print(f"streaming check {'passed' if ok else 'FAILED'} in {time.perf_counter() - t0:.0f} s")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
