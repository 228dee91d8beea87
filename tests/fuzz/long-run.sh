#!/usr/bin/env bash
# A long fuzzing run of one target, for volume: millions of executions in
# reach of a loaded 2-core machine.
#
#   bash tests/fuzz/long-run.sh TARGET [RUNS]     RUNS default 10000000
#
# ASan makes the targets 3 to 7 times slower, so the run uses a throughput
# build (build/fuzz-fast: -O2, libFuzzer + UBSan, no ASan) on the corpus
# scripts/fuzz.sh keeps (build/fuzz/corpus/TARGET), then replays everything
# that corpus holds through the ASan + UBSan build (build/fuzz, built by
# scripts/fuzz.sh), so every input that reached new code has also run under
# AddressSanitizer. A failed invariant, crash or sanitizer report stops it
# (exit 1) and leaves the input in build/fuzz-fast/artifacts/TARGET/.
# Logs: build/fuzz/logs/TARGET.fast.log (this run), TARGET.log (the replay).
set -euo pipefail
cd "$(dirname "$0")/../.."

target=${1:?usage: tests/fuzz/long-run.sh TARGET [RUNS]}
runs=${2:-10000000}
cxx=${FUZZ_CXX:-clang++-14}
out=build/fuzz-fast
mkdir -p "$out/obj" "$out/artifacts/$target" "build/fuzz/corpus/$target" build/fuzz/logs

flags=(-O2 -g1 -fsanitize=fuzzer-no-link,undefined -fno-sanitize-recover=all -iquote core -std=c++20
  -DJSON_USE_IMPLICIT_CONVERSIONS=0 "-DTOOLGATE_SOURCE_DIR=\"$PWD\"")
objects=()
for source in core/*.cpp; do
  object=$out/obj/$(basename "$source" .cpp).o
  # Any header may have changed: rebuild an object older than any core file.
  if [ ! -f "$object" ] || [ -n "$(find core -newer "$object" -print -quit)" ]; then
    "$cxx" "${flags[@]}" -c "$source" -o "$object"
  fi
  objects+=("$object")
done
# Link the objects of today's sources only, not obj/*.o: an object left from a
# source since removed or split (regex.o, before regex_parse/compile/match)
# would define the same symbols twice.
"$cxx" "${flags[@]}" -fsanitize=fuzzer "tests/fuzz/fuzz_$target.cpp" "${objects[@]}" -o "$out/fuzz_$target"

export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
"$out/fuzz_$target" -timeout=10 -rss_limit_mb=2048 -max_len=8192 -print_final_stats=1 -runs="$runs" \
  -dict="tests/fuzz/dict/$target.dict" -artifact_prefix="$out/artifacts/$target/" \
  "build/fuzz/corpus/$target" "tests/fuzz/corpus/$target" >"build/fuzz/logs/$target.fast.log" 2>&1 || {
  tail -n 40 "build/fuzz/logs/$target.fast.log" >&2
  exit 1
}
grep '^stat::' "build/fuzz/logs/$target.fast.log"

# The corpus again, under AddressSanitizer: scripts/fuzz.sh with 0 seconds
# builds build/fuzz and replays build/fuzz/corpus/TARGET and the seeds.
bash scripts/fuzz.sh 0 "$target"
