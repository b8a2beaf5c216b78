#!/usr/bin/env bash
# The one prepared run for a lent GPU machine (issues 11 and 15), made to fit one 10-minute command:
#   1. the CUDA tests, tests/test_cuda.py (every family and kernel against the CPU)          about 1 minute
#   2. bench_vs_nvlabs.py --device cuda: config F 1024 against NVlabs' custom CUDA ops,
#      float32 and float16, batch 1 and 8 (NVlabs' ops are built first)                     at most 4 minutes
#   3. explorer/training/resume_on_gpu.sh: both shipped runs for MINUTES (default 3)        MINUTES + 1 minute
#
#   bash benchmarks/gpu_session.sh OUTDIR [MINUTES]
#
# Before the run, here: the dataset (python -m explorer.training.emoji_dataset --out data/emoji64.npz) and, for
# step 2, a checkout of NVlabs' stylegan3 that you provide, unpacked into .nvlabs in the repository's root and
# ignored by git (echo /.nvlabs/ >> .git/info/exclude); it is never committed. Carry both: data and .nvlabs.
# OUTDIR receives 7 files: report.txt (the tests, the benchmark, the training logs), each run's checkpoint, its
# measures and its last sample grid. Copy the checkpoints over assets/training/ only after looking at them.
set -uo pipefail
outdir=${1:?folder for the results}
minutes=${2:-3}
python=${PYTHON:-python3}
mkdir -p "$outdir"
report="$outdir/report.txt"
: > "$report"

echo "== CUDA tests" | tee -a "$report"
"$python" -m pytest -q -p no:cacheprovider --tb=short -rfE tests/test_cuda.py 2>&1 | tee -a "$report" | tail -n 15

echo "== bench_vs_nvlabs.py --device cuda" | tee -a "$report"
if [ -f .nvlabs/legacy.py ]; then
    PYTHONUNBUFFERED=1 timeout 240 "$python" benchmarks/bench_vs_nvlabs.py --nvlabs .nvlabs --device cuda \
        --networks config-f-1024 --batch 1 8 2>&1 | tee -a "$report"
else
    echo "no NVlabs checkout in .nvlabs: the comparison with NVlabs' CUDA ops did not run" | tee -a "$report"
fi

echo "== training, $minutes minutes per run" | tee -a "$report"
training=$(mktemp -d)
bash explorer/training/resume_on_gpu.sh "$minutes" "$training" 2>&1 | tee -a "$report"
for run in stylegan stylegan2; do
    echo "-- $run.log" >> "$report"
    cat "$training/$run.log" >> "$report" 2>/dev/null || true
    for file in "$run.pt" "$run-measures.jsonl" "$run-samples.png"; do
        [ -f "$training/$file" ] && cp "$training/$file" "$outdir/$file"
    done
done
ls -la "$outdir"
