"""How much a trained agent's location policy depends on the image: one result line per run folder.

Runs the mean-path test episodes of the first ``--images`` test images (``trace``, as the glimpse pictures) and
reports, per step, the spread over images of the location means (std, location units: 0 is one fixed scan for every
image) and, for the input of the location head (RAM's state; GAM's decoder output), its spread over images as a
share of its norm (1: all image, 0: none). For GAM also the norm and image share of each part its first decoder
layer sums at the first step after a glimpse (query, self-attention, cross-attention, feed-forward), and with
``encoder_skip`` the two terms the location head adds before its tanh (the location MLP's output and the skip's
map of the newest encoder token): the figures behind docs/research/gam-location-head.md.

    python benchmarks/location_probe.py runs/learning/translated-gam-learned [more run folders] [--images 500]
"""

from __future__ import annotations

import argparse

import torch

from activevision.agents.trainer import load_run, trace


def share(x: torch.Tensor) -> tuple[float, float]:
    """(norm, spread over images / norm) of vectors ``x`` (images first)."""
    x = x.reshape(len(x), -1)
    norm = x.pow(2).sum(1).mean().sqrt()
    return norm.item(), (x.std(0).pow(2).sum().sqrt() / norm).item()


def probe(folder: str, images: int) -> str:
    config, agent, device = load_run(folder, device="cpu")
    seen: dict[str, list[torch.Tensor]] = {}

    def keep(name: str, output: bool = False):
        def hook(module, inputs, out):
            seen.setdefault(name, []).append((out if output else inputs[0]).detach())

        return hook

    agent.locator.register_forward_hook(keep("head"))
    if config.agent == "gam":
        layer = agent.decoder[0]
        layer.norm.register_forward_hook(keep("query"))
        layer.cross_attention.register_forward_hook(keep("cross-attention", output=True))
        layer.feed_forward.register_forward_hook(keep("feed-forward", output=True))
        layer.self_attention.register_forward_hook(keep("self-attention", output=True))
        if agent.encoder_skip is not None:
            agent.locator.register_forward_hook(keep("mlp-term", output=True))
            agent.encoder_skip.register_forward_hook(keep("encoder-term", output=True))
    with torch.no_grad():  # the same mean-path episodes of the first test images as the glimpse pictures
        locations = torch.from_numpy(trace(agent, config, device, split=config.eval_split, examples=images)["locs"])
    first = 1 if config.agent == "gam" else 0  # GAM's first call is the start token's, before any glimpse
    spread = " ".join(f"{locations[:, t].std(0).mean():.3f}" for t in range(1, locations.shape[1]))
    head = " ".join(f"{share(x)[1]:.2f}" for x in seen["head"][first:])
    # the skip is not called for the start token: its first entry is already the first step after a glimpse
    parts = " ".join(
        "{}={:.3g}/{:.2f}".format(name, *share(values[0 if name == "encoder-term" else first]))
        for name, values in seen.items()
        if name != "head"
    )
    return (
        f"location_probe run={folder} agent={config.agent} env={config.env} images={images} "
        f"location_spread_per_step={spread} head_input_image_share_per_step={head}"
        + (f" decoder_parts_norm/image_share: {parts}" if parts else "")
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="run folders (config.json and checkpoint.pt)")
    parser.add_argument("--images", type=int, default=500, help="test images (one mean-path episode each)")
    args = parser.parse_args()
    if args.images < 2:
        raise SystemExit(f"--images {args.images} is not allowed: use 2 or more (a spread needs two)")
    torch.set_num_threads(1)
    for folder in args.runs:
        print(probe(folder, args.images), flush=True)


if __name__ == "__main__":
    main()
