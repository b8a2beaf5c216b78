#!/usr/bin/env bash
# Resume both shipped training runs on a CUDA machine for a fixed time and leave their new checkpoints, measures,
# logs and last sample grids in one folder (issue 15: a GPU does in minutes what takes the 2-core CPU days).
#
#   bash explorer/training/resume_on_gpu.sh MINUTES OUTDIR
#
# Needs data/emoji64.npz (python -m explorer.training.emoji_dataset --out data/emoji64.npz; a lent device machine
# cannot build it: carry the folder data), a python3 whose torch sees CUDA, and numpy, pillow and safetensors.
# The two runs share the GPU (each is far too small to fill it); each measures its checkpoints (the samples on
# the GPU, their features and distances on the CPU with THREADS threads, default 4). --minutes stops the training loop; the last save, measurement and sample grid come
# after it, so leave a minute or two of the machine's time beyond MINUTES. Every file left in OUTDIR is under 16 MiB and
# named in letters, digits, '.', '_' and '-', as a lent machine's output folder takes them back.
set -euo pipefail
minutes=${1:?minutes of training per run}
outdir=${2:?folder for the results}
python=${PYTHON:-python3}
device=${DEVICE:-cuda}          # DEVICE=cpu runs the same steps here, to check the script in a minute
mkdir -p "$outdir"
if [ "$device" = cuda ]; then
    "$python" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'no CUDA device: this script is for a GPU machine')"
    "$python" -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name(0), flush=True)"
fi
test -f data/emoji64.npz || { echo "data/emoji64.npz is missing: build it with python -m explorer.training.emoji_dataset" >&2; exit 2; }

workdir=$(mktemp -d)
pids=()
for run in stylegan stylegan2; do
    # --kimg far beyond any run's end: --minutes stops it. A checkpoint (measured, about a minute) every
    # CHECKPOINT_MINUTES (default: only at the end, so that a short run trains all its minutes).
    "$python" -m explorer.training.trainer --data data/emoji64.npz --outdir "$workdir/$run" --device "$device" \
        --resume "assets/training/$run.pt" --kimg 100000 --minutes "$minutes" --threads "${THREADS:-4}" \
        --checkpoint-minutes "${CHECKPOINT_MINUTES:-$minutes}" --sample-minutes "${CHECKPOINT_MINUTES:-$minutes}" \
        > "$outdir/$run.log" 2>&1 &
    pids+=($!)
done
status=0
for pid in "${pids[@]}"; do wait "$pid" || status=1; done

for run in stylegan stylegan2; do
    if [ -f "$workdir/$run/checkpoint.pt" ]; then
        cp "$workdir/$run/checkpoint.pt" "$outdir/$run.pt"
        cp "$workdir/$run/measures.jsonl" "$outdir/$run-measures.jsonl" 2>/dev/null || true
        last=$(ls "$workdir/$run"/samples-*.png 2>/dev/null | tail -n 1 || true)
        [ -n "$last" ] && cp "$last" "$outdir/$run-samples.png"
    fi
    tail -n 3 "$outdir/$run.log"
done
exit $status
