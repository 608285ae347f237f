#!/usr/bin/env bash
# libFuzzer targets (fuzz/targets/*.swift), built with -sanitize=fuzzer,address.
#
#   scripts/fuzz.sh TARGET|all [SECONDS | -runs=N] [more libFuzzer flags...]
#   scripts/fuzz.sh all 30          # 30 s per target (CI)
#   scripts/fuzz.sh request -runs=1000000
#   scripts/fuzz.sh encode 600 -max_len=4096
#   scripts/fuzz.sh build           # build every fuzzer, run none
#
# Targets: request (PipelineRequest.decode), tokenizer (tokenizer.json loading), encode (the
# NorBERT fixture tokenizer on arbitrary text), safetensors (a .safetensors file / header).
#
# How it builds: SwiftPM compiles the package's library modules, instrumented, into the separate
# scratch path .build-fuzz (Package.swift is untouched; `swift build` / `swift test` never see the
# fuzzers); then swiftc compiles each fuzz/targets/<target>.swift against those modules and links
# it with their object files and libFuzzer into .build-fuzz/fuzzers/<target>.
#
# Runs one libFuzzer process per target, one after another (-jobs/-workers unset). Seeds:
# fuzz/corpus/<target> (read only); new inputs go to .build-fuzz/corpus/<target>; crashes,
# timeouts and leaks to .build-fuzz/artifacts/<target>/; the full log to .build-fuzz/logs/<target>.log.
# Exits non-zero if any target found a crash, timeout or leak (or failed to build); prints each
# target's libFuzzer summary line.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
if ! command -v swiftc >/dev/null && [ -x /opt/swift/usr/bin/swiftc ]; then
    export PATH=/opt/swift/usr/bin:$PATH
fi

TARGETS=(request tokenizer encode safetensors)
SCRATCH=$ROOT/.build-fuzz
BIN=$SCRATCH/release
BUILD_JOBS=${FUZZ_BUILD_JOBS:-1}

usage() {
    sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

[ $# -ge 1 ] || usage
WHAT=$1
shift
case "$WHAT" in
    all|build) SELECTED=("${TARGETS[@]}") ;;
    request|tokenizer|encode|safetensors) SELECTED=("$WHAT") ;;
    *) usage ;;
esac

LIMIT=()
if [ $# -ge 1 ]; then
    case "$1" in
        -runs=*) LIMIT=("$1"); shift ;;
        ''|*[!0-9]*) ;;
        *) LIMIT=("-max_total_time=$1"); shift ;;
    esac
fi
EXTRA=("$@")

# -enable-testing: the safetensors target calls the internal header parser (@testable import).
# Per target: the package target to build (it brings its dependencies), the modules to link,
# extra link flags, and default libFuzzer flags (later flags on the command line win).
top_module() {
    case "$1" in
        request) echo Pipelines ;;
        tokenizer|encode) echo Tokenizers ;;
        safetensors) echo SafeTensors ;;
    esac
}
link_modules() {
    case "$1" in
        request) echo "Pipelines NorBERT SafeTensors Tensors Tokenizers Wire CKernels" ;;
        tokenizer|encode) echo "Tokenizers Wire" ;;
        safetensors) echo "SafeTensors Tensors Wire CKernels" ;;
    esac
}
link_flags() {
    case "$1" in
        request|safetensors) echo "-lopenblas" ;;
    esac
}
fuzz_flags() {
    case "$1" in
        request) echo "-max_len=4096 -timeout=30 -dict=fuzz/dict/request.dict" ;;
        tokenizer) echo "-max_len=16384 -timeout=60 -dict=fuzz/dict/tokenizer.dict" ;;
        encode) echo "-max_len=65536 -timeout=30 -dict=fuzz/dict/encode.dict" ;;
        safetensors) echo "-max_len=4096 -timeout=30 -dict=fuzz/dict/safetensors.dict" ;;
    esac
}

build_modules() {
    local top=$1
    echo "fuzz.sh: building $top (instrumented) in .build-fuzz ..." >&2
    swift build --scratch-path "$SCRATCH" -c release -j "$BUILD_JOBS" --target "$top" \
        -Xswiftc -sanitize=fuzzer,address -Xswiftc -enable-testing >"$SCRATCH/logs/build-$top.log" 2>&1 || {
        tail -40 "$SCRATCH/logs/build-$top.log" >&2
        echo "fuzz.sh: building $top failed (log: .build-fuzz/logs/build-$top.log)" >&2
        return 1
    }
}

# The object files of one module: from the sources SwiftPM compiled in its last build (so stale
# objects of deleted files are not linked); every object for a C module.
module_objects() {
    local dir=$BIN/$1.build source object
    if [ -f "$dir/sources" ]; then
        while IFS= read -r source; do
            [ -n "$source" ] || continue
            object=$dir/$(basename "$source").o
            [ -f "$object" ] || { echo "fuzz.sh: no object $object for $source" >&2; return 1; }
            echo "$object"
        done <"$dir/sources"
    else
        ls "$dir"/*.o
    fi
}

build_fuzzer() {
    local target=$1 objects=() module list object
    for module in $(link_modules "$target"); do
        list=$(module_objects "$module") || return 1
        while IFS= read -r object; do objects+=("$object"); done <<<"$list"
    done
    # shellcheck disable=SC2046
    swiftc -O -parse-as-library -sanitize=fuzzer,address -module-name "fuzz_$target" \
        "fuzz/targets/$target.swift" -I "$BIN/Modules" \
        -Xcc -fmodule-map-file="$BIN/CKernels.build/module.modulemap" \
        -Xcc -fmodule-map-file="$ROOT/Sources/COpenBLAS/module.modulemap" \
        -Xcc -I"$ROOT/Sources/CKernels/include" \
        "${objects[@]}" $(link_flags "$target") -o "$SCRATCH/fuzzers/$target" \
        >"$SCRATCH/logs/link-$target.log" 2>&1 || {
        tail -40 "$SCRATCH/logs/link-$target.log" >&2
        echo "fuzz.sh: building the $target fuzzer failed" >&2
        return 1
    }
}

run_fuzzer() {
    local target=$1 log=$SCRATCH/logs/$target.log status=0
    mkdir -p "$SCRATCH/corpus/$target" "$SCRATCH/artifacts/$target"
    # shellcheck disable=SC2046
    "$SCRATCH/fuzzers/$target" "$SCRATCH/corpus/$target" "fuzz/corpus/$target" \
        $(fuzz_flags "$target") -rss_limit_mb=4096 -print_final_stats=1 \
        -artifact_prefix="$SCRATCH/artifacts/$target/" ${LIMIT[@]+"${LIMIT[@]}"} ${EXTRA[@]+"${EXTRA[@]}"} \
        >"$log" 2>&1 || status=$?
    local execs rate corpus summary
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    corpus=$(grep -Eo 'corp: [0-9]+/[0-9]+[a-zA-Z]*' "$log" | tail -1 | sed 's/corp: //')
    if [ $status -eq 0 ]; then
        summary=$(grep -E '^Done [0-9]+ runs' "$log" | tail -1)
        echo "fuzz.sh: $target: OK: $summary (executions ${execs:-?}, ${rate:-?} exec/s, corpus ${corpus:-?})"
    else
        tail -60 "$log" >&2
        summary=$(grep -E '^SUMMARY: ' "$log" | tail -1 || true)
        echo "fuzz.sh: $target: FAILED (exit $status): ${summary:-no libFuzzer summary line; see log}" \
             "(executions ${execs:-?}; artifacts in .build-fuzz/artifacts/$target/, log .build-fuzz/logs/$target.log)"
    fi
    return $status
}

mkdir -p "$SCRATCH/logs" "$SCRATCH/fuzzers"
failed=()
built_tops=()
if [ ${#SELECTED[@]} -gt 1 ]; then
    # Pipelines brings every module the targets link.
    build_modules Pipelines || exit 1
    built_tops=(Pipelines Tokenizers SafeTensors)
fi
for target in "${SELECTED[@]}"; do
    top=$(top_module "$target")
    if [[ " ${built_tops[*]-} " != *" $top "* ]]; then
        build_modules "$top" || { failed+=("$target"); continue; }
        built_tops+=("$top")
    fi
    build_fuzzer "$target" || { failed+=("$target"); continue; }
    [ "$WHAT" = build ] && { echo "fuzz.sh: built .build-fuzz/fuzzers/$target"; continue; }
    run_fuzzer "$target" || failed+=("$target")
done

if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz.sh: failed: ${failed[*]}" >&2
    exit 1
fi
