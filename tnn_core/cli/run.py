"""``tnn run``: unroll a graph on random or given input and report shapes and wall time."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from ..compat import load_state_dict_file
from ..errors import ConfigError, Problem
from ..temporal_graph import TemporalGraph


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "run",
        help="unroll a graph on random or given input; print output shapes per step and the wall time",
        description="Build a graph, unroll it in eval mode and print the output shape at every time step.",
    )
    parser.add_argument("config", metavar="CONFIG", help="config file (.json, .yaml)")
    parser.add_argument("--n-times", type=int, metavar="T", help="time steps to unroll (default: num_timesteps, or the input's time dimension)")
    parser.add_argument("--batch", type=int, default=2, metavar="N", help="batch size of the random input (default: 2)")
    parser.add_argument("--mode", choices=["biological", "full"], default="biological", help="unroll schedule (default: biological)")
    parser.add_argument("--input", type=Path, metavar="FILE", help="input tensor, .npy or .pt, (N, T, C, H, W) or (N, C, H, W); default: random normal")
    parser.add_argument("--weights", type=Path, metavar="FILE", help="weights to load: a state dict (.pt, e.g. from `tnn convert-ptnn`) or a `tnn train` checkpoint (.ckpt)")
    parser.add_argument("--input-shape", nargs=3, type=int, metavar=("C", "H", "W"), help="stimulus shape; overrides the config's input_shape")
    parser.add_argument("--num-timesteps", type=int, metavar="T", help="overrides the config's num_timesteps")
    parser.add_argument("--seed", type=int, default=0, help="seed for the random input (default: 0)")
    parser.add_argument("--threads", type=int, default=None, metavar="K", help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--save", type=Path, metavar="OUT.pt", help="save the outputs of every step, (N, T, ...), to this file")
    parser.set_defaults(func=run)
    return parser


def _read_input(path: Path) -> torch.Tensor:
    if not path.is_file():
        raise ConfigError(Problem("--input", f"input file {str(path)!r} not found"))
    if path.suffix == ".npy":
        import numpy as np

        return torch.from_numpy(np.load(path)).float()
    if path.suffix in (".pt", ".pth"):
        data = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(data, torch.Tensor):
            raise ConfigError(Problem("--input", f"{str(path)!r} must hold one tensor, got {type(data).__name__}"))
        return data.float()
    raise ConfigError(Problem("--input", f"unsupported input file {str(path)!r}; use .npy or .pt"))


def run(args: argparse.Namespace) -> int:
    if args.threads:
        torch.set_num_threads(args.threads)
    graph = TemporalGraph(args.config, input_shape=args.input_shape, num_timesteps=args.num_timesteps).eval()
    if args.weights:
        load_state_dict_file(graph, args.weights)

    if args.input is not None:
        inputs = _read_input(args.input)
    else:
        generator = torch.Generator().manual_seed(args.seed)
        inputs = torch.randn((args.batch, *graph.input_shape), generator=generator)

    start = time.perf_counter()
    with torch.no_grad():
        result = graph.unroll(inputs, n_times=args.n_times, mode=args.mode)
    elapsed = time.perf_counter() - start

    steps = result.outputs.shape[1]
    for t in range(steps):
        print(f"step {t}: output {list(result.outputs[:, t].shape)}")
    print(f"{args.mode} unroll of {steps} steps, batch {inputs.shape[0]}: {elapsed * 1000:.1f} ms")
    if args.save:
        tmp = args.save.with_suffix(args.save.suffix + ".tmp")
        torch.save(result.outputs, tmp)
        tmp.replace(args.save)  # never leave a half-written file under the final name
        print(f"saved outputs {list(result.outputs.shape)} to {args.save}")
    return 0
