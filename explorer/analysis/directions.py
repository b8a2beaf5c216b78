"""Directions in W that mean something, found three ways, and what moving along one does.

GANSpace (Härkönen et al. 2020): the principal components of w over many random z; moving w along one of the
first components over a range of w indices gives the paper's layer-range edits.
SeFa (Shen & Zhou 2021): closed form from the weights alone. The style units of the chosen layers are rows of
their affine (w -> style) weights; each row is scaled to unit length, and the directions n that the rows
stretch most, the top eigenvectors of W^T W, are the directions that change the styles most.
InterFaceGAN (Shen et al. 2020): a boundary trained elsewhere, a .npy of w_dim values, its unit normal.

A DirectionSet carries the hash of the network it was made for (network_hash); loading it for another network
is refused, since its directions mean nothing there.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from .latent import layer_module

DEFAULT_PCA_SAMPLES = 10_000
MAPPING_BATCH = 2_000          # z mapped at a time: 10,000 x 512 floats per layer are fine, 1e6 would not be
SET_FORMAT = "stylegan-explorer-directions"
SET_VERSION = 1
METHODS = ("pca", "sefa", "interfacegan", "mixed")
HASH_CHUNK = 1 << 24           # bytes hashed at a time


class DirectionError(ValueError):
    """A direction, boundary or direction-set file that cannot be used; the message is one line for the user."""


@dataclass(frozen=True, eq=False)
class DirectionSet:
    """Unit directions in W, best first. values: explained variance ratio (pca), eigenvalue (sefa), NaN
    (imported). layers: the layers SeFa factorised (empty for the others)."""
    method: str
    names: tuple[str, ...]
    directions: np.ndarray                 # [count, w_dim] float32
    values: np.ndarray                     # [count] float64
    network_hash: str
    layers: tuple[str, ...] = ()
    mean: np.ndarray | None = field(default=None)   # PCA: the mean w the components are centred on

    def __post_init__(self):
        if self.directions.ndim != 2 or not len(self.names) == len(self.directions) == len(self.values):
            raise DirectionError("a direction set needs one name and one value per direction")

    @property
    def w_dim(self) -> int:
        return int(self.directions.shape[1])

    def __len__(self) -> int:
        return len(self.names)


# -- the network's identity -------------------------------------------------------------------------------------

def network_hash(G) -> str:
    """sha256 of the family, the constructor arguments and every parameter and persistent buffer (names, dtypes,
    shapes and bytes, in name order): the same weights give the same hash on any machine and device."""
    digest = hashlib.sha256()
    digest.update(str(getattr(G, "family", type(G).__name__)).encode())
    digest.update(json.dumps(getattr(G, "config", {}), sort_keys=True, default=str).encode())
    state = G.state_dict()
    for name in sorted(state):
        tensor = state[name].detach().to("cpu").contiguous()
        digest.update(f"\0{name}\0{tensor.dtype}\0{tuple(tensor.shape)}\0".encode())
        data = tensor.reshape(-1).view(torch.uint8).numpy() if tensor.numel() else np.zeros(0, np.uint8)
        for start in range(0, data.size, HASH_CHUNK):
            digest.update(data[start:start + HASH_CHUNK].tobytes())
    return digest.hexdigest()


# -- GANSpace -----------------------------------------------------------------------------------------------------

def pca_of_samples(samples: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(components [count, dim], explained variance ratio [count], mean [dim]) of samples [N, dim]: the top
    eigenvectors of their covariance, signs fixed so that each component's largest entry is positive."""
    samples = np.asarray(samples, dtype=np.float64)
    if samples.ndim != 2 or samples.shape[0] < 2:
        raise DirectionError("PCA needs at least 2 samples")
    if not 1 <= count <= samples.shape[1]:
        raise DirectionError(f"count must be 1 to {samples.shape[1]}, not {count}")
    mean = samples.mean(axis=0)
    centred = samples - mean
    _, singular, vt = np.linalg.svd(centred, full_matrices=False)
    variance = singular ** 2
    total = variance.sum()
    ratio = variance / total if total > 0 else np.zeros_like(variance)
    return fix_signs(vt[:count]), ratio[:count], mean


def fix_signs(vectors: np.ndarray) -> np.ndarray:
    """Each row times the sign of its largest-magnitude entry: eigenvectors are defined up to sign, and a
    slider should move the same way on every machine."""
    vectors = np.asarray(vectors)
    largest = np.abs(vectors).argmax(axis=1)
    signs = np.sign(vectors[np.arange(len(vectors)), largest])
    signs[signs == 0] = 1
    return vectors * signs[:, None]


def sample_w(G, samples: int = DEFAULT_PCA_SAMPLES, seed: int = 0) -> np.ndarray:
    """[samples, w_dim] untruncated w of z drawn from numpy's RandomState(seed); a conditional network's
    classes drawn uniformly from the same stream."""
    rnd = np.random.RandomState(seed)
    device = G.mapping.w_avg.device
    out = []
    with torch.no_grad():
        for start in range(0, samples, MAPPING_BATCH):
            n = min(MAPPING_BATCH, samples - start)
            z = torch.from_numpy(rnd.randn(n, G.z_dim)).to(device=device, dtype=torch.float32)
            c = None
            if G.c_dim:
                c = torch.nn.functional.one_hot(torch.from_numpy(rnd.randint(G.c_dim, size=n)), G.c_dim)
                c = c.to(device=device, dtype=torch.float32)
            out.append(G.mapping(z, c, truncation_psi=1)[:, 0].cpu().numpy())
    return np.concatenate(out).astype(np.float64)


def pca_directions(G, count: int = 10, samples: int = DEFAULT_PCA_SAMPLES, seed: int = 0,
                   hash_: str | None = None) -> DirectionSet:
    if samples < 2:
        raise DirectionError(f"PCA needs at least 2 samples, not {samples}")
    components, ratio, mean = pca_of_samples(sample_w(G, samples, seed), count)
    return DirectionSet("pca", tuple(f"pc{i}" for i in range(count)), components.astype(np.float32), ratio,
                        hash_ or network_hash(G), mean=mean.astype(np.float32))


# -- SeFa ---------------------------------------------------------------------------------------------------------

def styled_layers(G, include_torgb: bool = False) -> list[str]:
    """The layers whose affine SeFa factorises by default: every convolution layer (ToRGB only when asked;
    StyleGAN3's input, whose 'style' is a rotation and translation, never by default)."""
    kinds = ("conv", "torgb") if include_torgb else ("conv",)
    return [info.name for info in G.synthesis.layers if info.kind in kinds and info.style_channels > 0]


def affine_weights(G, layers: Sequence[str]) -> list[np.ndarray]:
    """The affine weight [style units, w_dim] of each named layer (the run-time scale left out: SeFa normalises
    each row)."""
    by_name = {info.name: info for info in G.synthesis.layers}
    weights = []
    for name in layers:
        if name not in by_name:
            raise DirectionError(f"no layer named {name!r}; layers: {', '.join(by_name)}")
        if by_name[name].style_channels == 0:
            raise DirectionError(f"layer {name!r} has no style (no affine): styled layers: "
                                 f"{', '.join(n for n, i in by_name.items() if i.style_channels)}")
        weights.append(layer_module(G, name).affine.weight.detach().to("cpu", torch.float64).numpy())
    return weights


def sefa_of_weights(weights: Sequence[np.ndarray], count: int) -> tuple[np.ndarray, np.ndarray]:
    """(directions [count, w_dim], eigenvalues [count]): rows of the stacked weights [units, w_dim] scaled to unit
    length (all-zero rows, which no w moves, left out), then the top eigenvectors of W^T W."""
    stacked = np.concatenate([np.asarray(w, dtype=np.float64) for w in weights], axis=0)
    norms = np.linalg.norm(stacked, axis=1, keepdims=True)
    rows = stacked[norms[:, 0] > 0] / norms[norms[:, 0] > 0]
    if not len(rows):
        raise DirectionError("the chosen layers' affine weights are all zero")
    if not 1 <= count <= stacked.shape[1]:
        raise DirectionError(f"count must be 1 to {stacked.shape[1]} (w_dim), not {count}")
    eigenvalues, eigenvectors = np.linalg.eigh(rows.T @ rows)        # ascending
    order = np.argsort(eigenvalues)[::-1][:count]
    return fix_signs(eigenvectors[:, order].T), eigenvalues[order]


def sefa_directions(G, count: int = 10, layers: Sequence[str] | None = None, hash_: str | None = None
                    ) -> DirectionSet:
    layers = list(layers) if layers is not None else styled_layers(G)
    if not layers:
        raise DirectionError("no layers chosen")
    directions, eigenvalues = sefa_of_weights(affine_weights(G, layers), count)
    return DirectionSet("sefa", tuple(f"sefa{i}" for i in range(count)), directions.astype(np.float32),
                        eigenvalues, hash_ or network_hash(G), layers=tuple(layers))


# -- InterFaceGAN ---------------------------------------------------------------------------------------------

def load_boundary(path: str | os.PathLike, w_dim: int) -> np.ndarray:
    """The unit normal [w_dim] float32 of an InterFaceGAN boundary .npy ([w_dim] or [1, w_dim])."""
    path = Path(path)
    try:
        values = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise DirectionError(f"no such file: {path}")
    except (OSError, ValueError, EOFError) as error:
        raise DirectionError(f"{path}: not a .npy array ({error})")
    if not isinstance(values, np.ndarray) or values.dtype.kind not in "fiu":
        raise DirectionError(f"{path}: a boundary holds numbers, not {getattr(values, 'dtype', type(values))}")
    if values.size != w_dim or values.squeeze().ndim > 1:
        raise DirectionError(f"{path}: a boundary for this network has {w_dim} values (its w_dim); this one has "
                             f"shape {list(values.shape)}")
    vector = values.reshape(w_dim).astype(np.float64)
    if not np.isfinite(vector).all():
        raise DirectionError(f"{path}: the boundary holds NaN or infinite values")
    norm = np.linalg.norm(vector)
    if norm == 0:
        raise DirectionError(f"{path}: the boundary is all zeros; it has no direction")
    return (vector / norm).astype(np.float32)


def boundary_set(paths: Sequence[str | os.PathLike], w_dim: int, hash_: str) -> DirectionSet:
    """Imported boundaries, named after their files."""
    vectors = [load_boundary(path, w_dim) for path in paths]
    return DirectionSet("interfacegan", tuple(Path(p).stem for p in paths), np.stack(vectors),
                        np.full(len(vectors), np.nan), hash_)


# -- moving along a direction ---------------------------------------------------------------------------------

def apply_direction(ws: torch.Tensor, direction, strength: float, w_indices: Sequence[int] | range
                    ) -> torch.Tensor:
    """A new ws [N, num_ws, w_dim] with strength x direction added to the chosen w indices, the others as
    they were."""
    direction = torch.as_tensor(np.asarray(direction), dtype=ws.dtype, device=ws.device).reshape(-1)
    if direction.numel() != ws.shape[-1]:
        raise DirectionError(f"the direction has {direction.numel()} values; w has {ws.shape[-1]}")
    indices = list(w_indices)
    if any(not 0 <= i < ws.shape[1] for i in indices):
        raise DirectionError(f"w indices must be 0 to {ws.shape[1] - 1}, not {indices}")
    out = ws.clone()
    if indices:
        out[:, indices] = out[:, indices] + float(strength) * direction
    return out


@dataclass(frozen=True)
class DirectionOffset:
    """One slider of the Directions panel, as the render request carries it: the direction itself (so the
    request reproduces without the set's file), how far along it, and which w indices it moves (first..last,
    inclusive; the GANSpace paper's layer ranges)."""
    direction: tuple[float, ...]
    strength: float
    first_w: int
    last_w: int
    name: str = ""

    @classmethod
    def of(cls, directions: DirectionSet, index: int, strength: float, first_w: int, last_w: int
           ) -> "DirectionOffset":
        return cls(tuple(float(v) for v in directions.directions[index]), float(strength), int(first_w),
                   int(last_w), directions.names[index])

    def check(self, num_ws: int, w_dim: int) -> None:
        if len(self.direction) != w_dim:
            raise DirectionError(f"direction {self.name or ''} has {len(self.direction)} values; w has {w_dim}")
        if not 0 <= self.first_w <= self.last_w < num_ws:
            raise DirectionError(f"the w range {self.first_w}-{self.last_w} must lie in 0-{num_ws - 1}, "
                                 f"first <= last")
        if not (np.isfinite(self.strength) and np.isfinite(self.direction).all()):
            raise DirectionError("a direction offset must be finite")


def apply_direction_offsets(ws: torch.Tensor, offsets: Sequence[DirectionOffset]) -> torch.Tensor:
    """ws with every offset added in turn (a new tensor; ws unchanged)."""
    for offset in offsets:
        offset.check(ws.shape[1], ws.shape[2])
        ws = apply_direction(ws, offset.direction, offset.strength, range(offset.first_w, offset.last_w + 1))
    return ws


def layer_w_indices(G, layers: Sequence[str]) -> list[int]:
    """The w indices that style the named layers, sorted, each once."""
    by_name = {info.name: info for info in G.synthesis.layers}
    return sorted({by_name[name].w_index for name in layers if by_name[name].w_index is not None})


# -- named sets on disk -----------------------------------------------------------------------------------------

def save_direction_set(directions: DirectionSet, path: str | os.PathLike) -> Path:
    """Write the set as .npz (array `directions` [count, w_dim], best first, and what it is); never overwrites."""
    path = Path(path)
    arrays = dict(format=np.array(SET_FORMAT), version=np.array(SET_VERSION), method=np.array(directions.method),
                  names=np.array(directions.names, dtype=str), directions=directions.directions.astype(np.float32),
                  values=np.asarray(directions.values, dtype=np.float64),
                  network_hash=np.array(directions.network_hash), layers=np.array(directions.layers, dtype=str))
    if directions.mean is not None:
        arrays["mean"] = directions.mean.astype(np.float32)
    from ..export.files import ExportError, write_file_at
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    try:
        # Written whole under a temporary name, then linked to its own: never over a file, never half a file.
        return write_file_at(path, buffer.getvalue())
    except ExportError as error:
        raise DirectionError(str(error))


def load_direction_set(path: str | os.PathLike, expected_hash: str | None = None) -> DirectionSet:
    """A set written by save_direction_set; refused (DirectionError) when expected_hash is given and the set was
    made for another network."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except FileNotFoundError:
        raise DirectionError(f"no such file: {path}")
    except (OSError, ValueError, EOFError) as error:
        raise DirectionError(f"{path}: not a direction set (.npz) ({error})")
    missing = [key for key in ("format", "directions", "names", "values", "method", "network_hash")
               if key not in arrays]
    if missing or str(arrays.get("format", "")) != SET_FORMAT:
        raise DirectionError(f"{path}: not a stylegan-explorer direction set")
    directions = arrays["directions"]
    if directions.ndim != 2 or directions.dtype.kind != "f" or not np.isfinite(directions).all():
        raise DirectionError(f"{path}: its directions are not a finite [count, w_dim] array")
    stored_hash = str(arrays["network_hash"])
    if expected_hash is not None and stored_hash != expected_hash:
        raise DirectionError(f"{path} was made for another network (hash {stored_hash[:12]}, this network's is "
                             f"{expected_hash[:12]}); make the directions again for this network")
    method = str(arrays["method"])
    if method not in METHODS:
        raise DirectionError(f"{path}: unknown method {method!r}")
    return DirectionSet(method, tuple(str(n) for n in arrays["names"]), directions.astype(np.float32),
                        arrays["values"].astype(np.float64), stored_hash,
                        tuple(str(n) for n in arrays.get("layers", np.array([], dtype=str))),
                        arrays["mean"].astype(np.float32) if "mean" in arrays else None)
