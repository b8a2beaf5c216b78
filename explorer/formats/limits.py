"""The bounds a network file must stay within, checked before anything the file declares is allocated.

They are far above what any StyleGAN-family network needs (config F at 1024 px: 30 M parameters, a 360 MB
snapshot, about 100,000 pickle operations, 20 levels of nesting) and far below what exhausts a desktop machine.
"""
from __future__ import annotations

# The largest file read at all (the biggest released StyleGAN snapshot is about 1 GB).
MAX_FILE_BYTES = 4 << 30

# Pickle operations of one file, nested tensor records included; the objects they may leave alive; the MARKs
# open at once; and how deep the loaded data may nest.
MAX_PICKLE_OPERATIONS = 1_000_000
MAX_PICKLE_STACK = 200_000
MAX_PICKLE_MARKS = 200
MAX_DATA_DEPTH = 100
# How many container items a walk of the loaded data may visit, per pickle operation that made it: data that
# repeats a shared list inside itself ("billion laughs") expands beyond this at once.
DATA_VISITS_PER_OPERATION = 4
MIN_DATA_VISITS = 10_000
# The longest integer a pickle may spell (bytes of LONG1/LONG4, digits of INT/LONG): sizes need 8 bytes.
MAX_INT_BYTES = 64
MAX_TEXT_LINE = 4096

# One tensor or array, and the dimensions it may have.
MAX_TENSOR_ELEMENTS = 1 << 28
MAX_TENSOR_DIMS = 8

# torch.save's zip layout: a record may not expand beyond its compressed size by more than this (torch stores
# records uncompressed; deflate reaches about 1,000 on zeros), nor all records together beyond the file size.
MAX_ZIP_RATIO = 64
MAX_ZIP_TOTAL_RATIO = 4
MAX_ZIP_ENTRIES = 100_000

# A safetensors header.
MAX_HEADER_BYTES = 100 << 20

# Constructor arguments of a StyleGAN-family generator.
MAX_RESOLUTION = 4096
MAX_LATENT_DIM = 4096       # z_dim, w_dim, mapping widths
MAX_CLASSES = 100_000       # c_dim
MAX_IMG_CHANNELS = 16
MAX_CHANNELS = 4096         # feature maps of one layer
MAX_CHANNEL_BASE = 1 << 26
MAX_MAPPING_LAYERS = 32
MAX_FP16_RESOLUTIONS = 32   # num_fp16_res beyond log2(resolution) means "all"
MAX_FILTER_TAPS = 64        # resample / blur filters given as settings
MAX_DESIGNED_TAPS = 512     # StyleGAN3's designed low-pass filters
MAX_SG3_LAYERS = 64
MAX_BASE_SIDE = 16          # a non-square StyleGAN2's first constant, [height, width] (StyleGAN-Human: [4, 2])
MAX_MARGIN = 256
MAX_PARAMETERS = 1 << 30    # elements of all parameters and buffers of one generator
