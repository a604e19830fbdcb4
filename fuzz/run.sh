#!/usr/bin/env bash
# Fuzzing Weir (cargo-fuzz, libFuzzer). Installs what it needs, seeds each target's corpus
# from testdata/, then runs the targets.
#
#   fuzz/run.sh                      smoke run: every target for 20 s, one after another
#   fuzz/run.sh smoke 5              every target for 5 s
#   fuzz/run.sh long 600             every target for 600 s, FUZZ_JOBS (default 2) at a time
#   fuzz/run.sh long 600 parse_json  the named targets only
#
# A crash stops its target: the input is saved in fuzz/artifacts/<target>/ (replay it with
# `cargo +nightly fuzz run <target> fuzz/artifacts/<target>/<file>` from fuzz/), the log is
# in fuzz/logs/<target>.log, and the script exits 1 after the other targets. The corpus
# grows in fuzz/corpus/<target>/ (ignored by git) and is reused by the next run.
#
# Toolchain: cargo-fuzz needs nightly features (-Zsanitizer). It uses the `nightly`
# toolchain when rustup has one or can install it; else the pinned toolchain with
# RUSTC_BOOTSTRAP=1 (its AddressSanitizer runtime ships with it).
set -euo pipefail
cd "$(dirname "$0")"

mode=${1:-smoke}
# The smoke run builds without optimisation (`--dev`): in CI the build is most of its cost
# (wasmtime and cranelift instrumented and optimised took tens of minutes on 2 cores), and
# 20 s of fuzzing needs no speed. Long runs build optimised.
case "$mode" in
    smoke) seconds=${2:-20}; profile=(--dev) ;;
    long) seconds=${2:-600}; profile=(-O) ;;
    *) echo "usage: fuzz/run.sh [smoke [SECONDS] | long [SECONDS]] [TARGET...]" >&2; exit 2 ;;
esac
shift $(( $# > 1 ? 2 : $# ))
all_targets=(parse_json parse_regex parse_kv parse_delimiter parse_timestamp syslog framer encoders config wasm_edits)
targets=("$@")
if [ $# -eq 0 ]; then targets=("${all_targets[@]}"); fi

# The agent (config) and the Wasm host (wasm_edits) are built only when one of their targets
# is asked for; then every target is built with both features, so that the shared crates
# (wasmtime, weir-core...) are compiled once, with one set of features.
features=()
case " ${targets[*]} " in
    *" config "* | *" wasm_edits "*) features=(--features agent,wasm) ;;
esac

# --- toolchain -------------------------------------------------------------------------
toolchain=()
if rustup run nightly rustc --version >/dev/null 2>&1 \
    || rustup toolchain install nightly --profile minimal >/dev/null 2>&1; then
    toolchain=(+nightly)
    export RUSTUP_TOOLCHAIN=nightly
else
    pinned=$(sed -n 's/^channel = "\(.*\)"/\1/p' ../rust-toolchain.toml)
    echo "note: no nightly toolchain; using $pinned with RUSTC_BOOTSTRAP=1" >&2
    export RUSTC_BOOTSTRAP=1 RUSTUP_TOOLCHAIN=$pinned
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    # cargo-fuzz builds with the stable toolchain; RUSTUP_TOOLCHAIN would pin it to nightly.
    env -u RUSTUP_TOOLCHAIN -u RUSTC_BOOTSTRAP cargo +stable install cargo-fuzz --locked \
        || env -u RUSTUP_TOOLCHAIN -u RUSTC_BOOTSTRAP cargo install cargo-fuzz --locked
fi
echo "toolchain: $(rustc --version); $(cargo fuzz --version)"

# --- seeds from testdata/ ---------------------------------------------------------------
# Each target's corpus starts from the project's own samples: whole files (the targets read
# their first bytes as settings and the rest as text) and, for line parsers, single lines.
seed() {
    local target=$1; shift
    mkdir -p "corpus/$target"
    local f
    for f in "$@"; do
        [ -f "$f" ] || continue
        cp "$f" "corpus/$target/seed-$(basename "$(dirname "$f")")-$(basename "$f")"
    done
}
seed_lines() {
    local target=$1 file=$2 n=0 line
    mkdir -p "corpus/$target"
    while IFS= read -r line && [ $n -lt 40 ]; do
        printf '\x00\x00\x00\x00%s' "$line" > "corpus/$target/seed-$(basename "$file")-$n"
        n=$((n + 1))
    done < "$file"
}
td=../testdata
seed parse_json $td/cases/parse_json/*.yaml $td/cases/filter/*.yaml
seed_lines parse_json $td/logs/edge_cases.log
for f in $td/logs/containers/*; do [ -f "$f" ] && seed_lines parse_json "$f"; done
seed parse_regex $td/cases/parse_regex/*.yaml
seed_lines parse_regex $td/logs/nginx_access.log
seed parse_kv $td/cases/parse_kv/*.yaml
seed parse_delimiter $td/cases/parse_delimiter/*.yaml
seed parse_timestamp $td/cases/parse_timestamp/*.yaml
seed syslog $td/logs/syslog.log
seed framer $td/cases/multiline/*.yaml $td/cases/container/*.yaml $td/cases/lines/*.yaml $td/logs/java_app.log
seed encoders $td/logs/edge_cases.log $td/cli/run/*.out
seed config $td/cli/check/*.yaml $td/cli/run/*.yaml ../examples/*.yaml ../examples/*/*.yaml
seed wasm_edits $td/cases/mask/*.yaml

# --- run --------------------------------------------------------------------------------
mkdir -p logs
flags=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1)
run_one() {
    local target=$1
    if cargo fuzz run "${profile[@]}" "${features[@]}" "$target" -- "${flags[@]}" >"logs/$target.log" 2>&1; then
        local runs
        runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "logs/$target.log" | tail -1)
        echo "ok    $target: ${runs:-?} executions in ${seconds}s"
    else
        echo "FAIL  $target: see fuzz/logs/$target.log and fuzz/artifacts/$target/"
        grep -m1 -A3 -E "panicked|ERROR: (libFuzzer|AddressSanitizer)" "logs/$target.log" || true
        return 1
    fi
}

# C dependencies are built without AddressSanitizer: the cc crate would instrument them
# too (it follows -Zsanitizer), and librdkafka's configure then fails every link check
# against the instrumented zstd (the agent feature pulls in the kafka input and output).
# The targets fuzz Rust code, which stays instrumented.
export CFLAGS="${CFLAGS:-} -fno-sanitize=address"

# Build first, so the timings below are fuzzing only and a build error stops everything.
for t in "${targets[@]}"; do
    case " ${all_targets[*]} " in *" $t "*) ;; *) echo "unknown target $t" >&2; exit 2 ;; esac
done
cargo fuzz build "${profile[@]}" "${features[@]}"

failed=0
if [ "$mode" = smoke ]; then
    for t in "${targets[@]}"; do run_one "$t" || failed=1; done
else
    jobs=${FUZZ_JOBS:-2}
    results=$(mktemp)
    for t in "${targets[@]}"; do
        while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n || true; done
        (run_one "$t" || echo "failed" >>"$results.failed") >>"$results" &
    done
    wait
    cat "$results"
    [ -f "$results.failed" ] && failed=1
    rm -f "$results" "$results.failed"
fi
exit $failed
