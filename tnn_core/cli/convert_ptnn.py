"""``tnn convert-ptnn``: turn a PyTorchTNN checkpoint into a pytorch-tnn state dict."""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from ..compat import load_ptnn_state_dict, read_checkpoint_state_dict
from ..temporal_graph import TemporalGraph


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "convert-ptnn",
        help="convert a PyTorchTNN checkpoint for a graph built from the same config",
        description="Load a PyTorchTNN state dict (a .pt file or a Lightning .ckpt, whose 'model.' prefix is removed) "
        "into a graph built from CONFIG, strictly, and save the graph's state dict.",
    )
    parser.add_argument("config", metavar="CONFIG", help="the config the checkpoint was trained with")
    parser.add_argument("checkpoint", type=Path, metavar="CHECKPOINT", help="PyTorchTNN state dict or Lightning checkpoint")
    parser.add_argument("-o", "--output", type=Path, required=True, metavar="OUT.pt", help="where to write the converted state dict")
    parser.add_argument("--input-shape", nargs=3, type=int, metavar=("C", "H", "W"), help="overrides the config's input_shape")
    parser.add_argument("--num-timesteps", type=int, metavar="T", help="overrides the config's num_timesteps")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    graph = TemporalGraph(args.config, input_shape=args.input_shape, num_timesteps=args.num_timesteps)
    state = read_checkpoint_state_dict(args.checkpoint)
    load_ptnn_state_dict(graph, state)

    tmp = args.output.with_suffix(args.output.suffix + ".tmp")
    torch.save(graph.state_dict(), tmp)
    tmp.replace(args.output)  # never leave a half-written file under the final name
    print(f"converted {len(state)} tensors from {args.checkpoint} to {args.output}")
    return 0
