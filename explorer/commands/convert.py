"""`stylegan-explorer convert [--pkl FILE] --out OUT.safetensors`: any network file to the explorer's own format."""
from __future__ import annotations

import os
import secrets
from pathlib import Path

from .common import UserError, add_network_argument, open_network

NATIVE_SUFFIX = ".safetensors"


def register(subparsers) -> None:
    parser = subparsers.add_parser("convert", help="convert any network file to stylegan-explorer safetensors")
    add_network_argument(parser)
    parser.add_argument("--out", required=True, help="the new file, NAME.safetensors")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing file")
    parser.set_defaults(handler=run)


def run(args) -> int:
    from ..formats.native import save_network
    out = Path(args.out)
    if out.suffix.lower() != NATIVE_SUFFIX:
        raise UserError(f"--out {out}: the converted file is safetensors; name it NAME{NATIVE_SUFFIX}")
    if (out.exists() or out.is_symlink()) and not args.overwrite:
        raise UserError(f"not overwriting {out}; choose another --out or pass --overwrite")
    loaded = open_network(args.pkl)
    extra = {"source": f"{loaded.format_label}: {Path(loaded.path).name}" + (f" ({loaded.detail})" if loaded.detail
                                                                             else ""),
             "notes": loaded.notes, "w_avg_estimated": loaded.w_avg_estimated}
    # Written under a hidden name of our own beside the target, then published whole: a user file is never
    # touched on the way, and an interrupted or failed write (a full disk) leaves nothing under the target name.
    temporary = out.with_name(f".{out.name}.{secrets.token_hex(6)}.tmp")
    try:
        save_network(loaded.generator, temporary, extra=extra)
        os.chmod(temporary, FILE_MODE & ~_umask())
        if args.overwrite:
            os.replace(temporary, out)
        else:
            os.link(temporary, out)       # fails if the name was taken meanwhile: never overwrites
    except FileExistsError:
        raise UserError(f"not overwriting {out}; choose another --out or pass --overwrite")
    except OSError as error:
        raise UserError(f"cannot write {out}: {error.strerror or error}")
    finally:
        for leftover in (temporary, temporary.with_name(temporary.name + ".partial")):
            try:
                leftover.unlink()
            except OSError:
                pass
    print(f"wrote {out}")
    return 0


FILE_MODE = 0o666     # as any new file: the user's umask decides (safetensors' writer leaves 0600)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
