"""Network files from code bases this explorer does not read, named from what their bytes hold.

A file that no loader takes, or that a loader refuses, gets the line for its layout here instead of a generic
error, when the markers of one of these layouts are in it: names that the layout's pickles always write (the
globals and persistent class names of its training code, the state-dict keys of its checkpoints). They are
looked for in the file's bytes, never run: torch.save stores its records uncompressed, so the keys of a .pt
checkpoint are readable there as they are in a pickle.

Which layouts: the StyleGAN-family files that public model lists and the code using them name besides the
ones this explorer reads (NVlabs pickles, TF pickles, rosinality, genforce, pSp/e4e decoders): StyleGAN-XL,
Projected GAN and StyleGAN-T pickles, lucidrains' stylegan2-pytorch and lightweight-gan checkpoints,
MMGeneration (OpenMMLab) checkpoints, pSp/e4e encoder checkpoints without their decoder, and TorchScript
archives (which hold code).
"""
from __future__ import annotations

from dataclasses import dataclass

PICKLE = b"\x80"
ZIP = b"PK\x03\x04"


@dataclass(frozen=True)
class ForeignLayout:
    label: str                          # what the file is, as its users call it
    verdict: str                        # what the explorer does with it
    markers: tuple[bytes, ...]          # all of them are in such a file
    starts: tuple[bytes, ...] = (PICKLE, ZIP)   # the container it comes in (a file's first bytes)
    absent: tuple[bytes, ...] = ()      # none of them is in such a file (tells apart layouts sharing markers)

    def matches(self, data: bytes) -> bool:
        return (data.startswith(self.starts) and all(marker in data for marker in self.markers)
                and not any(marker in data for marker in self.absent))

    @property
    def line(self) -> str:
        return f"{self.label}: {self.verdict}"


NOT_YET = "not supported yet"
FOREIGN_LAYOUTS: tuple[ForeignLayout, ...] = (
    ForeignLayout("TorchScript archive", "it holds program code, which this explorer never runs; open the network "
                  "file it was exported from", (b"code/__torch__",), starts=(ZIP,)),
    # StyleGAN-XL's generator source (recorded in every persistent object of its pickles) defines this class.
    ForeignLayout("StyleGAN-XL pickle", NOT_YET, (b"SuperresGenerator",), starts=(PICKLE,)),
    ForeignLayout("Projected GAN pickle", NOT_YET, (b"FastganSynthesis",), starts=(PICKLE,)),
    ForeignLayout("Projected GAN pickle", NOT_YET, (b"pg_modules.",), starts=(PICKLE,)),
    ForeignLayout("StyleGAN-T pickle", NOT_YET, (b"StyleSplit",), starts=(PICKLE,)),
    ForeignLayout("lucidrains stylegan2-pytorch checkpoint", NOT_YET, (b"GE.initial_block",)),
    ForeignLayout("lucidrains lightweight-gan checkpoint", NOT_YET, (b"GE.initial_conv",)),
    # OpenMMLab's MMGeneration / MMagic StyleGAN2 generators (their converted official weights among them).
    ForeignLayout("MMGeneration checkpoint", NOT_YET, (b"style_mapping.", b"constant_input."), starts=(ZIP,)),
    ForeignLayout("pSp/e4e encoder checkpoint", "this is an encoder without its generator (no decoder weights); "
                  "open the StyleGAN2 generator it was trained with", (b"encoder.", b"opts"),
                  absent=(b"decoder.style.",)),
)


def identify(data: bytes) -> ForeignLayout | None:
    """The foreign layout whose markers `data` holds, or None."""
    for layout in FOREIGN_LAYOUTS:
        if layout.matches(data):
            return layout
    return None
