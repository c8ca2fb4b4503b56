"""`nngraph sample`: pictures of a generative model. Decodes random N(0, I) codes fed to a
layer (a VAE's `z`) into a grid PNG, or plots the dataset's mean codes coloured by class
(`--latent`, 2-D codes, needs matplotlib)."""
from __future__ import annotations

import numpy as np

from .errors import DataError
from .subnet import downstream, layer_values


def _sampling_layer(net) -> str | None:
    found = [n for n in net.layers() if net.node(n)["op"].name == "reparameterize"]
    return found[0] if len(found) == 1 else None


def cmd_sample(args) -> int:
    from . import load_model
    from .image_grid import grid, write_png
    model = load_model(args.model, backend=args.backend)
    layer = args.source or _sampling_layer(model.net)
    if layer is None:
        raise DataError(f"{args.model}: say which layer the codes go to with --from LAYER "
                        f"(layers: {', '.join(model.net.layers())})")
    if args.latent:
        return _scatter(model, layer, args)
    if args.n < 1:
        raise DataError(f"-n must be at least 1, got {args.n}")
    shape = downstream(model.net, layer).inputs[layer].shape     # DataError if no such part
    codes = np.random.default_rng(args.seed).normal(size=(args.n,) + tuple(shape))
    out = model.predict_from(layer, codes.astype(model.dtype))
    if isinstance(out, dict):
        out = next(iter(out.values()))
    name = model.net.outputs[0]
    pixels = grid(out, model.net.node(name)["shape"])
    write_png(args.output, pixels)
    print(f"wrote {args.n} samples of '{name}' decoded from N(0, I) codes of layer "
          f"'{layer}' to {args.output} ({pixels.shape[1]}x{pixels.shape[0]} pixels)")
    return 0


def _scatter(model, layer, args) -> int:
    from .datasets import load_dataset
    net = model.net
    d = net.node(layer) if layer in net.layers() else None
    code = args.code or (d["inputs"][0] if d and d["op"].name == "reparameterize" else layer)
    name = args.dataset or (net.train.get("data") or {}).get("dataset")
    if name is None:
        raise DataError("--latent needs a named dataset: the spec's train.data has none; "
                        "give --dataset NAME")
    x, y = load_dataset(name, dtype=model.dtype.name)
    (feature,) = net.feature_inputs[:1]
    values = layer_values(model, code, {feature: np.asarray(x)[:args.limit]})
    if values.reshape(len(values), -1).shape[1] != 2:
        raise DataError(f"layer '{code}' gives codes of shape {list(values.shape[1:])}; "
                        "--latent plots 2-D codes (specs/vae_2d.yaml)")
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise DataError("--latent draws with matplotlib, which is not installed: "
                        "pip install matplotlib") from None
    v, labels = values.reshape(len(values), 2), np.asarray(y)[:args.limit]
    fig, ax = plt.subplots(figsize=(6, 5))
    points = ax.scatter(v[:, 0], v[:, 1], c=labels, cmap="tab10", s=4)
    fig.colorbar(points, ax=ax, label="class")
    ax.set_xlabel(f"{code}[0]")
    ax.set_ylabel(f"{code}[1]")
    ax.set_title(f"{net.name}: '{code}' of {len(v):,} samples of {name}")
    fig.savefig(args.output, dpi=100)
    plt.close(fig)
    print(f"wrote the codes of layer '{code}' for {len(v):,} samples of {name} to {args.output}")
    return 0


def register(sub) -> None:
    s = sub.add_parser("sample", help="decode random codes of a generative model to a PNG grid",
                       description="Feed N random N(0, I) codes to layer LAYER of MODEL "
                       "(by default its reparameterize layer), run the layers after it and "
                       "write the outputs as a grid of images (a flat output of a square "
                       "size, (H, W), or (C, H, W)). With --latent, plot instead the codes "
                       "(the reparameterize layer's mean, or --code) of the spec's dataset, "
                       "coloured by class (2-D codes; needs matplotlib). Example: nngraph "
                       "sample vae.nnz --from z -n 64 -o grid.png")
    s.add_argument("model", metavar="MODEL.nnz")
    s.add_argument("--from", dest="source", metavar="LAYER", default=None,
                   help="the layer the codes replace (default: the reparameterize layer)")
    s.add_argument("-n", type=int, default=64, help="how many samples (default 64)")
    s.add_argument("-o", "--output", metavar="OUT.png", default="samples.png")
    s.add_argument("--seed", type=int, default=0, help="of the random codes (default 0)")
    s.add_argument("--latent", action="store_true",
                   help="plot the dataset's codes coloured by class instead")
    s.add_argument("--code", metavar="LAYER", default=None,
                   help="with --latent: the layer whose values are plotted")
    s.add_argument("--dataset", metavar="NAME", default=None,
                   help="with --latent: a named dataset (default: the spec's)")
    s.add_argument("--limit", type=int, default=None,
                   help="with --latent: plot only the first LIMIT samples")
    s.add_argument("--backend", choices=["cpu", "reference"], default=None)
    s.set_defaults(func=cmd_sample)
