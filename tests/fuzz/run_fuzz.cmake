# Runs the libFuzzer target for SECONDS on a fresh copy of the seed corpus
# in WORK, and fails on any crash, leak, UBSan report or broken check.
#   cmake -DFUZZER=bin -DCORPUS=dir -DDICT=file -DWORK=dir -DSECONDS=n -P run_fuzz.cmake
foreach(var FUZZER CORPUS DICT WORK SECONDS)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "run_fuzz.cmake: -D${var}=... is missing")
  endif()
endforeach()

file(REMOVE_RECURSE ${WORK})
file(MAKE_DIRECTORY ${WORK}/corpus ${WORK}/artifacts)
file(GLOB seeds ${CORPUS}/*)
list(LENGTH seeds nseeds)
file(COPY ${seeds} DESTINATION ${WORK}/corpus)

# Every sanitizer report is fatal (the target is built with
# -fno-sanitize-recover=all); keep what a caller set, add stack traces.
if(NOT DEFINED ENV{UBSAN_OPTIONS})
  set(ENV{UBSAN_OPTIONS} "print_stacktrace=1:halt_on_error=1")
endif()
if(NOT DEFINED ENV{ASAN_OPTIONS})
  set(ENV{ASAN_OPTIONS} "detect_leaks=1")
endif()

message(STATUS "fuzz: ${FUZZER} for ${SECONDS} s from ${nseeds} seeds in ${WORK}/corpus")
execute_process(
  COMMAND ${FUZZER} -max_total_time=${SECONDS} -max_len=4096 -timeout=10 -rss_limit_mb=2048
          -dict=${DICT} -print_final_stats=1 -artifact_prefix=${WORK}/artifacts/ ${WORK}/corpus
  RESULT_VARIABLE rc
  OUTPUT_VARIABLE out
  ERROR_VARIABLE out)
message("${out}")

set(failed "")
if(NOT rc EQUAL 0)
  set(failed "the fuzzer exited with ${rc}")
elseif(out MATCHES "runtime error:|ERROR: AddressSanitizer|ERROR: LeakSanitizer|ERROR: libFuzzer|fuzz_message: ")
  set(failed "a sanitizer or check report in its output")
elseif(NOT out MATCHES "Done [0-9]+ runs")
  set(failed "it did not finish its runs")
endif()
if(failed)
  file(GLOB artifacts ${WORK}/artifacts/*)
  set(repro "")
  foreach(a ${artifacts})
    string(APPEND repro "\n  ${FUZZER} ${a}")
  endforeach()
  message(FATAL_ERROR "fuzz: FAILED: ${failed}.  Reproduce with:${repro}")
endif()
file(GLOB grown ${WORK}/corpus/*)
list(LENGTH grown ngrown)
message(STATUS "fuzz: passed (${SECONDS} s, corpus ${nseeds} -> ${ngrown} inputs)")
