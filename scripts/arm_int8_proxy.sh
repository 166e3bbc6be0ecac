#!/usr/bin/env bash
# Does tract's int8 path pay on the board's ARM cores? No board here, and
# qemu's timings mean nothing (it emulates NEON floats slowly and integer
# ops fast), so this counts what qemu can count exactly: the guest
# instructions the aarch64 release build executes for the same work at f32
# and at int8, as a Cortex-A72 (Pi 4) and a Cortex-A76 (Pi 5), and which
# functions they are in. Writes docs/ARM_INT8.md from the verbatim output.
#
# The work: `neuroscreen bench-worker` (one precision in-process: each
# model timed on a sample, then the samples screened) with --runs 29 minus
# the same with --runs 1, which cancels start-up and model loading. Takes
# ~7 minutes after the aarch64 release build (~7 minutes the first time).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=env.sh
source "$here/env.sh"
cd "$NEUROSCREEN_ROOT"
target="${CARGO_TARGET_DIR:-$NEUROSCREEN_ROOT/target}"
cargo build -q --release -p firmware --target aarch64-unknown-linux-gnu
bin="$target/aarch64-unknown-linux-gnu/release/neuroscreen"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# The plugin API's symbols are resolved by qemu when it loads the plugin.
gcc -shared -fPIC -O2 -fvisibility=hidden -o "$work/insn_profile.so" "$here/qemu/insn_profile.c" \
    -Wl,--unresolved-symbols=ignore-all
sysroot=/usr/aarch64-linux-gnu
doc=docs/ARM_INT8.md
out="$work/out.txt"

count() { # cpu precision runs -> guest instructions
    qemu-aarch64 -L "$sysroot" -cpu "$1" -plugin "$work/insn_profile.so" -d plugin \
        "$bin" bench-worker --models models --precision "$2" --threads 1 --runs "$3" \
        2>&1 >/dev/null | awk '/guest instructions/ {print $3}'
}

{
    echo "qemu: $(qemu-aarch64 --version | head -1); tract: $(grep -A1 'name = "tract-core"' Cargo.lock | awk -F'"' '/version/ {print $2}')"
    echo "guest instructions for 28 more runs (bench-worker --runs 29 minus --runs 1), one thread"
    printf '%-11s %16s %16s %12s\n' cpu f32 int8 int8/f32
    for cpu in cortex-a72 cortex-a76; do
        declare -A d=()
        for p in f32 int8; do
            a=$(count "$cpu" "$p" 1)
            b=$(count "$cpu" "$p" 29)
            d[$p]=$((b - a))
        done
        printf '%-11s %16d %16d %11.2fx\n' "$cpu" "${d[f32]}" "${d[int8]}" \
            "$(echo "${d[int8]} / ${d[f32]}" | bc -l)"
    done
    echo
    echo "where the instructions go, cortex-a72, --runs 29 (whole process), top functions:"
    for p in f32 int8; do
        TB_PROFILE_OUT="$work/prof-$p.txt" qemu-aarch64 -L "$sysroot" -cpu cortex-a72 \
            -plugin "$work/insn_profile.so" -d page "$bin" bench-worker --models models \
            --precision "$p" --threads 1 --runs 29 >/dev/null 2>"$work/page-$p.txt"
    done
    aarch64-linux-gnu-nm -C --defined-only "$bin" | awk '$2 ~ /[tTwW]/' >"$work/syms.txt"
    python3 - "$work" <<'PY'
import bisect, collections, re, sys
work = sys.argv[1]
syms = []
for line in open(f"{work}/syms.txt"):
    parts = line.rstrip("\n").split(" ", 2)
    if len(parts) == 3:
        syms.append((int(parts[0], 16), re.sub(r"::h[0-9a-f]{16}$", "", parts[2])))
syms.sort()
addrs = [a for a, _ in syms]
for p in ("f32", "int8"):
    # qemu-user maps the PIE binary at start_code (printed by -d page).
    base = next(int(l.split()[1], 16) for l in open(f"{work}/page-{p}.txt") if l.startswith("start_code"))
    agg, total = collections.Counter(), 0
    for line in open(f"{work}/prof-{p}.txt"):
        v, c = line.split()
        v, c = int(v, 16) - base, int(c)
        total += c
        i = bisect.bisect_right(addrs, v) - 1
        inside = 0 <= v < addrs[-1] + 4096 and i >= 0
        agg[syms[i][1][:100] if inside else "(outside the binary: libc, loader)"] += c
    print(f"{p}: {total / 1e9:.2f} G guest instructions")
    for name, c in agg.most_common(10):
        print(f"  {100 * c / total:5.1f} %  {c / 1e9:6.2f} G  {name}")
PY
} | tee "$out"

{
    echo "# tract int8 vs f32 on ARM, by instruction count under emulation"
    echo
    echo "Written by \`scripts/arm_int8_proxy.sh\` on $(date -u +%F) at commit $(git rev-parse --short HEAD)."
    echo
    echo "No board was available. qemu-user runs the aarch64 release build of \`neuroscreen\` as a Cortex-A72 (Raspberry Pi 4) and a Cortex-A76 (Pi 5); a small TCG plugin (\`scripts/qemu/insn_profile.c\`) counts the guest instructions executed and attributes them to functions. Emulated time means nothing (qemu emulates NEON floating point slowly and integer operations quickly, so int8 even *looks* faster under qemu), but the instruction count for the same work is exact. It is not time either: an int8 matmul instruction does 2-4x the multiply-adds of an f32 one, and scalar bookkeeping runs at a different rate than SIMD. What it shows is where the work is: if int8 executes several times f32's instructions and most of them outside the integer kernel, the int8 path cannot win by its kernel alone."
    echo
    echo '```'
    cat "$out"
    echo '```'
    echo
    echo "On x86 (\`docs/BENCHMARKS.md\`) tract's int8 takes 4-7x its f32 time, with the same architecture-independent functions (the zero-point sums \`QSumB\`, \`im2col\`, \`ndarray\` element-wise loops) at the top of a \`perf\` profile. So \`auto\` takes f32 on every CPU; \`--precision int8\` still runs the int8 files, and \`neuroscreen bench --no-ort\` on a real board settles it there."
} >"$doc"
echo "-> $doc"
