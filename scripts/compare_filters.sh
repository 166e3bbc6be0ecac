#!/usr/bin/env bash
# Compares trained filter runs as the appliance runs them. Each run is
# exported beside the shipped segmenter's run into a scratch models folder
# (threshold picked on its validation patients for 95 % sensitivity, int8
# gate, held-out test scores), then `neuroscreen bench --slices` screens the
# held-out bench phantoms (12 patients of seed 2026, which no shipped model
# saw) with the filter on and off, in f32 and int8 on one thread. Writes
# docs/FILTERS.md with every figure and the commands.
#
# Usage: scripts/compare_filters.sh RUN [RUN...]
#   SEGMENTER (runs/resunet), SLICES (data/bench-phantoms), DOC (docs/FILTERS.md),
#   RUNS (timed runs per model-only figure, 5)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=env.sh
source "$here/env.sh"
cd "$NEUROSCREEN_ROOT"
[ "$#" -ge 1 ] || { echo "usage: $0 RUN [RUN...]" >&2; exit 2; }
segmenter="${SEGMENTER:-runs/resunet}"
slices="${SLICES:-data/bench-phantoms}"
doc="${DOC:-docs/FILTERS.md}"
runs="${RUNS:-5}"
export OMP_NUM_THREADS=1
cargo build --release -p firmware -p trainer
target="${CARGO_TARGET_DIR:-$NEUROSCREEN_ROOT/target}/release"
if [ ! -d "$slices/kaggle_3m" ]; then
    "$target/neuroscreen-train" phantoms --out "$slices" --patients 12 --seed 2026 --contrast mixed
fi
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT

{
    echo "# Filter candidates, measured in the appliance"
    echo
    echo "Written by \`scripts/compare_filters.sh $*\` on $(date -u +%F) at commit $(git rev-parse --short HEAD), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), one thread."
    echo
    echo "Each filter run is exported beside the segmenter run \`$segmenter\` (\`neuroscreen-train export\`: the threshold is the highest P(tumour) that keeps 95 % of the tumour slices of the run's validation patients; the test figures are its held-out test patients, f32), then \`neuroscreen bench --slices\` screens every slice of \`$slices\` (phantom patients of seed 2026, which none of these runs saw) with the filter on and with every slice segmented. The runs' own training settings are in their \`config.toml\`; the commands that made them are in docs/TRAINING.md."
} >"$doc"

for run in "$@"; do
    name="$(basename "$run")"
    models="$scratch/$name"
    echo "== $run" >&2
    "$target/neuroscreen-train" export --segmenter "$segmenter" --filter "$run" --out "$models" \
        --eval-slices 200 --trained-on "CPU (2-core x86_64 dev machine)" >"$scratch/$name.export.txt"
    "$target/neuroscreen-train" eval --run "$run" --out "$scratch/$name.eval" >/dev/null
    grep -m1 "ROC AUC" "$scratch/$name.eval/report.md" >"$scratch/$name.auc.txt"
    cp -r models/samples "$models/"
    "$target/neuroscreen" bench --models "$models" --runs "$runs" --threads 1 --no-ort \
        --slices "$slices/kaggle_3m" >"$scratch/$name.bench.txt"
    {
        echo
        echo "## \`$run\`"
        echo
        echo '```'
        echo "\$ neuroscreen-train export --segmenter $segmenter --filter $run --out <scratch> --eval-slices 200"
        grep -E "^filter " "$scratch/$name.export.txt"
        echo "\$ neuroscreen-train eval --run $run"
        cat "$scratch/$name.auc.txt"
        echo "\$ neuroscreen bench --models <scratch> --runs $runs --threads 1 --no-ort --slices $slices/kaggle_3m"
        cat "$scratch/$name.bench.txt"
        echo '```'
    } >>"$doc"
done
# The figures side by side, above the full outputs.
python3 - "$doc" "$scratch" "$@" <<'PY'
import re, sys, pathlib
doc, scratch, runs = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2]), sys.argv[3:]
rows = ["| filter run | model | held-out ROC AUC (tch) | threshold | held-out test sens / spec (f32) | bench: filter passes tumour slices | segmented | tumour slices found (off: all segmented) | false alarms (off) | ms per slice on / off (f32) | speed-up f32 / int8 |",
        "|---|---|---|---|---|---|---|---|---|---|---|"]
for run in runs:
    name = pathlib.Path(run).name
    export = (scratch / f"{name}.export.txt").read_text()
    bench = (scratch / f"{name}.bench.txt").read_text()
    model = re.search(r"^filter\s+(\S+)\s+f32", export, re.M).group(1)
    auc = re.search(r"ROC AUC \| ([0-9.]+)", (scratch / f"{name}.auc.txt").read_text()).group(1)
    t = re.search(r"threshold ([0-9.]+).*sensitivity ([0-9.]+) specificity ([0-9.]+)$", export, re.M)
    sections = bench.split("filter on vs off, tract ")[1:]
    f32, int8 = sections[0], sections[1]
    off = re.search(r"^filter off\s+([0-9.]+)\s+\S+\s+.*?(\d+ / \d+) \([0-9.]+ %\)\s+(\d+ / \d+)", f32, re.M)
    on = re.search(r"^filter on\s+([0-9.]+)\s+\S+\s+(\d+ \(\d+ %\))\s+(\d+ / \d+) \([0-9.]+ %\)\s+(\d+ / \d+)", f32, re.M)
    passed = re.search(r"passed (\d+ of \d+) tumour slices", f32).group(1)
    up = [re.search(r"([0-9.]+)x as many", s).group(1) for s in (f32, int8)]
    rows.append(f"| `{run}` | {model} | {auc} | {t.group(1)} | {t.group(2)} / {t.group(3)} | {passed} | {on.group(2)} | "
                f"{on.group(3)} ({off.group(2)}) | {on.group(4)} ({off.group(3)}) | {on.group(1)} / {off.group(1)} | {up[0]}x / {up[1]}x |")
text = doc.read_text()
head, sep, rest = text.partition("\n## ")
doc.write_text(head.rstrip("\n") + "\n\n" + "\n".join(rows) + "\n\n## " + rest)
PY
echo "-> $doc" >&2
