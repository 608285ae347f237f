#!/usr/bin/env bash
# Runs the Kafka and Worker test suites under a sanitizer and reports what it found.
#
#   scripts/sanitize.sh address [FILTER]   # AddressSanitizer + LeakSanitizer, scratch .build-asan
#   scripts/sanitize.sh thread  [FILTER]   # ThreadSanitizer, scratch .build-tsan
#
# FILTER is a `swift test --filter` regex (default below). The tests that spawn `norbert-worker`
# run the sanitized binary of the same scratch path, so the worker processes are checked too.
# Every report (test process and child processes) goes to $LOGS/<kind>.<pid> (LOGS defaults to
# .build-<asan|tsan>/sanitizer-logs, emptied at the start); the script prints a summary of them
# (one line per distinct report: kind and top frames of our code) and exits non-zero if the
# tests failed or any report was written. Suppressions: scripts/tsan.supp, scripts/lsan.supp
# (each entry says why the report is not ours).
# Not run by `swift test` or CI (a sanitized build of everything: ~7 min, then ~6 min of tests).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/opt/swift/usr/bin:$PATH"

KIND="${1:-}"
case "$KIND" in
  address) SHORT=asan ;;
  thread) SHORT=tsan ;;
  *) echo "usage: $0 address|thread [FILTER]" >&2; exit 2 ;;
esac

# Default filter: the Kafka and Worker suites, the worker-process tests included
# (ServeProcessTests, ServeEqualityTests: thousands of requests through the sanitized binary;
# they take most of the ~6 min of tests under either sanitizer on this 2-core machine).
# SKIP='regex' leaves tests out (swift test --skip), e.g. SKIP='ServeProcessTests|ServeEqualityTests'.
FILTER="${2:-KafkaTests|WorkerTests}"
SKIP="${SKIP:-}"
SCRATCH="${SCRATCH:-.build-$SHORT}"
LOGS="${LOGS:-$SCRATCH/sanitizer-logs}"
SYMBOLIZER="$(command -v llvm-symbolizer || true)"

mkdir -p "$SCRATCH"
rm -rf "$LOGS"
mkdir -p "$LOGS"
LOGS="$(cd "$LOGS" && pwd)"
SUPP_DIR="$(pwd)/scripts"

echo "== sanitize $KIND: build ($SCRATCH)" >&2
swift build --build-tests -Xcc -O2 --sanitize="$KIND" --scratch-path "$SCRATCH" >&2

# log_path: one file per process (pid appended), children included (the env is inherited).
if [ "$KIND" = address ]; then
  export ASAN_OPTIONS="log_path=$LOGS/asan:detect_leaks=1:detect_stack_use_after_return=0:abort_on_error=0:symbolize=1${SYMBOLIZER:+:external_symbolizer_path=$SYMBOLIZER}"
  export LSAN_OPTIONS="suppressions=$SUPP_DIR/lsan.supp:print_suppressions=0:log_path=$LOGS/lsan"
else
  # C11 threads and Swift's Mutex made visible to TSan (see the file's header): without it
  # TSan crashes on librdkafka's first thread and reports accesses under a contended Mutex.
  cc -O1 -shared -fPIC -o "$SCRATCH/libtsan-c11-threads.so" scripts/tsan-c11-threads.c -lpthread -ldl
  export LD_PRELOAD="$(pwd)/$SCRATCH/libtsan-c11-threads.so"
  # halt_on_error=0: keep running after a report, so one run finds them all.
  export TSAN_OPTIONS="log_path=$LOGS/tsan:halt_on_error=0:second_deadlock_stack=1:history_size=4:suppressions=$SUPP_DIR/tsan.supp:print_suppressions=0${SYMBOLIZER:+:external_symbolizer_path=$SYMBOLIZER}"
fi

echo "== sanitize $KIND: swift test --filter '$FILTER'${SKIP:+ --skip '$SKIP'}" >&2
start=$(date +%s)
status=0
# One log per run (a later run must not overwrite the record of an earlier failure).
TESTLOG="$SCRATCH/swift-test-$SHORT-$(date +%Y%m%d-%H%M%S).log"
swift test --skip-build -Xcc -O2 --sanitize="$KIND" --scratch-path "$SCRATCH" --filter "$FILTER" ${SKIP:+--skip "$SKIP"} \
  > "$TESTLOG" 2>&1 || status=$?
end=$(date +%s)
grep -E '^(✘|✔|━) Test run with' "$TESTLOG" | tail -n 1 >&2 || true
# The tests that failed, by name (the first line of each failed test's issues).
grep -E '^✘ Test .* recorded an issue' "$TESTLOG" | cut -c1-300 | awk '!seen[$0]++' | head -n 20 >&2 || true
echo "== tests exit $status in $((end - start)) s (log: $TESTLOG)" >&2

# Summary: one line per distinct report (kind, then the first frames in our sources, else the
# first frames past the allocator and the sanitizer runtime). LeakSanitizer's leaks are counted
# one by one ("Direct leak of ...", "Indirect leak of ...").
set +e
python3 - "$LOGS" "$(pwd)" <<'PY' | swift demangle --simplified
import collections, os, re, sys
logs, root = sys.argv[1], sys.argv[2]
head = re.compile(r"^(?:==\d+==)?(WARNING: ThreadSanitizer: [^(]*|ERROR: AddressSanitizer: [\w-]+|(?:Direct|Indirect) leak)")
frame = re.compile(r"^\s+#\d+ (?:0x[0-9a-f]+ in )?(\S+) (.*)$")
runtime = re.compile(r"^(malloc|calloc|realloc|free|operator new|swift_slowAlloc|swift_allocObject|swift_retain|swift_release|__tsan|__asan|__interceptor|pthread_|posix_memalign|aligned_alloc|strdup)")
reports, examples = collections.Counter(), {}
files = sorted(os.listdir(logs))
for name in files:
    kind, ours, other = None, [], []
    def flush():
        if kind:
            where = " <- ".join(ours[:3]) if ours else "(not in our sources) " + " <- ".join(other[:3])
            reports[(kind.strip(), where)] += 1
            examples.setdefault((kind.strip(), where), name)
    for line in open(os.path.join(logs, name), errors="replace"):
        m = head.match(line)
        if m:
            flush(); kind, ours, other = m.group(1), [], []
            continue
        f = frame.match(line)
        if f and kind:
            function, location = f.group(1), f.group(2)
            if root in location and "/.build" not in location:
                ours.append(location.replace(root + "/", "").split(" ")[0])
            elif not runtime.match(function):
                module = re.search(r"\(([^)+]+)\+0x", location)
                other.append(f"{function[:60]} ({os.path.basename(module.group(1)) if module else location.split(':')[0].split('/')[-1]})")
        elif line.startswith("SUMMARY:") or line.startswith("===="):
            flush(); kind = None
    flush()
print(f"== {len(files)} sanitizer log file(s) in {logs}: {sum(reports.values())} report(s), {len(reports)} distinct")
for (kind, where), n in reports.most_common():
    print(f"{n:5d}  {kind}\n       at {where}\n       (e.g. {examples[(kind, where)]})")
sys.exit(1 if reports else 0)
PY
found=${PIPESTATUS[0]}
set -e
if [ "$status" -ne 0 ] || [ "$found" -ne 0 ]; then exit 1; fi
echo "== sanitize $KIND: clean" >&2
