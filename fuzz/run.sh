#!/bin/sh
# Run each loader harness for SECONDS (default 20) on a corpus it seeds itself.
# Usage: fuzz/run.sh [SECONDS] [WORKDIR]
set -e
secs=${1:-20}
work=${2:-$(mktemp -d)}
here=$(dirname "$0")
for t in onnx native state_dict; do
    mkdir -p "$work/$t" "$work/$t-crashes"
    python "$here/fuzz_loaders.py" "$t" --make-seeds "$work/$t"
    python "$here/fuzz_loaders.py" "$t" "$work/$t" -max_total_time="$secs" -rss_limit_mb=4096 \
        -timeout=20 -artifact_prefix="$work/$t-crashes/" 2>&1 | grep -E "^#[0-9]+ *(DONE|pulse)|ERROR|Exception|Done" | tail -3
done
echo "corpora and crashes under $work"
