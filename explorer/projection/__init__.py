"""Projection: the latent (and optionally W+ and the noise maps) whose image matches a photo, as in section 5 of
the StyleGAN2 paper (Karras et al. 2020, "Analyzing and Improving the Image Quality of StyleGAN").

    target.py     the photo, centre-cropped to the network's aspect ratio and resized to its resolution
    vgg16.py      a VGG16 feature stack read from a user's torchvision weights file (never downloaded)
    losses.py     multi-scale pixel distance, the network file's own discriminator features, LPIPS-style VGG16
                  distance (what each gives), the noise regularisation, PSNR
    projector.py  the optimisation: settings, per-step progress, stop at any moment, best result kept
"""
from .losses import DistanceTerms, ProjectionDistance, discriminator_misfit, noise_regularization, psnr
from .errors import ProjectionError
from .projector import (ProjectionProgress, ProjectionResult, ProjectionSettings, ProjectionStep,
                        project)
from .target import RESIZE_DESCRIPTION, load_target, target_from_image
from .vgg16 import VGG16Features, load_vgg16

__all__ = ["DistanceTerms", "ProjectionDistance", "discriminator_misfit", "noise_regularization", "psnr",
           "ProjectionError", "ProjectionProgress", "ProjectionResult", "ProjectionSettings", "ProjectionStep",
           "project", "RESIZE_DESCRIPTION", "load_target", "target_from_image", "VGG16Features", "load_vgg16"]
