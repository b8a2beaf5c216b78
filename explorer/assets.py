"""Where the shipped models are: every command and the window open the default model when no --pkl is given."""
from __future__ import annotations

from pathlib import Path

ASSETS = Path(__file__).resolve().parent.parent / "assets"
DEFAULT_MODEL = ASSETS / "default.safetensors"                      # StyleGAN2, 64 px emoji heads
DEFAULT_ADAIN_MODEL = ASSETS / "default_stylegan_adain.safetensors"  # StyleGAN (AdaIN), same data
