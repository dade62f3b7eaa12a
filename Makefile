# The README's commands.  CMake does the real work; build/ is the tree.
BUILD ?= build
ASAN_BUILD ?= build-asan
TSAN_BUILD ?= build-tsan
PREFIX ?= /usr/local
JOBS ?= $(shell nproc)

.PHONY: all deps build test test-asan test-tsan soak demo install bench clean

all: build

deps:
	@./scripts/deps.sh

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_INSTALL_PREFIX=$(PREFIX) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

# The whole CTest suite on the normal build.
test: build
	@ctest --test-dir $(BUILD) --output-on-failure -j $(JOBS) -LE soak

# The same suite built with clang under a sanitizer: a daemon that the
# sanitizer catches exits non-zero, and the test that stopped it fails.
SANITIZED = clang_build() { CC=clang cmake -S . -B $$1 -DCMAKE_BUILD_TYPE=Debug -DSC_SANITIZE=$$2 >/dev/null && cmake --build $$1 -j $(JOBS); }

# AddressSanitizer + UBSan (with leak checking).
test-asan: deps
	@$(SANITIZED); clang_build $(ASAN_BUILD) address,undefined
	@ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		ctest --test-dir $(ASAN_BUILD) --output-on-failure -j $(JOBS) -LE soak

# ThreadSanitizer: the loop thread, the RT thread and the clients' threads.
test-tsan: deps
	@$(SANITIZED); clang_build $(TSAN_BUILD) thread
	@TSAN_OPTIONS=halt_on_error=1 ctest --test-dir $(TSAN_BUILD) --output-on-failure -j $(JOBS) -LE soak

# The reliability suite's long variants (SC_SOAK=1: minutes, not seconds).
soak: build
	@ctest --test-dir $(BUILD) --output-on-failure -L soak

demo: build
	@./scripts/demo.sh $(BUILD)

install: build
	@cmake --install $(BUILD)

# soundcardd beside JACK2 (bench/README.md): a sweep of client counts and
# periods, the engine alone, the open/close round trip; writes
# bench/results/latest.{md,json,png}.  15 to 20 minutes.
bench: build
	@./scripts/deps.sh bench
	@/usr/bin/python3 bench/sweep --bin $(BUILD)/bin

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(TSAN_BUILD)
