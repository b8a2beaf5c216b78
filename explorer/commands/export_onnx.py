"""`stylegan-explorer export-onnx [--pkl FILE] --out G.onnx [--mapping-out M.onnx]`: the synthesis (ws -> raw
image, noise mode const) and optionally the mapping (z [, c], truncation_psi -> ws) as ONNX, each checked with
onnxruntime against the explorer's own output before it gets its name; existing files are never replaced."""
from __future__ import annotations

from pathlib import Path

from .common import UserError, add_network_argument, open_network, set_threads

ONNX_SUFFIX = ".onnx"


def register(subparsers) -> None:
    parser = subparsers.add_parser("export-onnx", help="write the synthesis (and the mapping) as ONNX")
    add_network_argument(parser)
    parser.add_argument("--out", required=True, help="the synthesis file, NAME.onnx: ws [N, num_ws, w_dim] in, "
                                                     "raw image [N, C, H, W] out")
    parser.add_argument("--mapping-out", default=None,
                        help="also write the mapping, NAME.onnx: z [N, z_dim] (and c [N, c_dim]) and "
                             "truncation_psi [] in, ws out")
    parser.add_argument("--no-check", action="store_true",
                        help="skip running the files with onnxruntime against the explorer")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for torch")
    parser.set_defaults(handler=run)


def _target(option: str, value: str) -> Path:
    path = Path(value)
    if path.suffix.lower() != ONNX_SUFFIX:
        raise UserError(f"{option} {path}: name the file NAME{ONNX_SUFFIX}")
    if path.exists() or path.is_symlink():
        raise UserError(f"{option} {path} exists; not overwriting it")
    return path


def run(args) -> int:
    from ..onnx_export import OnnxExportError, export_mapping, export_synthesis
    set_threads(args.threads)
    synthesis_path = _target("--out", args.out)
    mapping_path = _target("--mapping-out", args.mapping_out) if args.mapping_out else None
    if mapping_path is not None and mapping_path.resolve() == synthesis_path.resolve():
        raise UserError("--out and --mapping-out name the same file")
    G = open_network(args.pkl, "cpu").generator.eval()
    try:
        print(f"wrote {export_synthesis(G, synthesis_path, check=not args.no_check).describe()}")
        if mapping_path is not None:
            print(f"wrote {export_mapping(G, mapping_path, check=not args.no_check).describe()}")
    except OnnxExportError as error:
        raise UserError(str(error))
    return 0
