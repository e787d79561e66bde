# devmm: the front door.
#
#   make          install missing build dependencies (Debian), configure build/
#                 and build everything
#   make check    the default build's tests (cmocka, the scenario suite with
#                 --check-each, a bounded devmm stress, abi, parser), devmm bench
#                 --quick, a clang build with its tests, the tests under
#                 ASan+UBSan, the concurrency suite (stress included) under TSan,
#                 and make fuzz (libFuzzer on the scenario parser and on the
#                 trace reader, FUZZ_SECONDS=30 each);
#                 fails on the first failure
#   make demo     build and run the guided walkthrough (build/devmm demo)
#   make bench    build build-release/ (release, no lock assertions, no tests)
#                 and run the benchmarks there: build-release/bench.json and
#                 the plot build-release/bench.png (see docs/performance.md)
#   make bench-scale  the same release build: the scale benchmarks (a 64 GiB
#                 working set, contents=none, and the 2^14..2^24-page sweep; about
#                 a minute): build-release/scale.json and its chart
#                 build-release/scale.png (docs/performance.md, "Scale")
#   make clean    remove every build directory
#
# Set DEPS_PKGS= (empty) to skip the package check, e.g. on a non-Debian system.

MESON ?= meson
NINJA ?= ninja
NUM_PROCESSES ?= 2

BUILD := build
BUILD_ASAN := build-asan
BUILD_TSAN := build-tsan
BUILD_CLANG := build-clang
BUILD_RELEASE := build-release

# Debian packages the build and `make check` need (gcc's sanitizer runtimes
# come with gcc; clang's with libclang-rt-14-dev; libjansson-dev for the
# policy engine's JSON output).
DEPS_PKGS ?= meson ninja-build libcmocka-dev pkg-config gcc clang libclang-rt-14-dev libjansson-dev
# ... and what `make bench` needs on top, to draw its plot from the JSON.
BENCH_PKGS := gnuplot-nox jq

comma := ,
# Every test build has the lock assertions (docs/locking.md §5); the plain
# meson default, and build-release, do not.
SETUP_OPTS := -Dtests=enabled -Dlockdep=true
TEST := $(MESON) test --print-errorlogs --num-processes $(NUM_PROCESSES)
SAN_ENV := ASAN_OPTIONS=halt_on_error=1:abort_on_error=1:detect_leaks=1 \
	UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
TSAN_ENV := TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1

# $(call setup,DIR,OPTIONS[,ENV]): configure DIR unless it is configured;
# a test build configured before the lockdep option existed gets it turned on.
setup = @if [ ! -f $(1)/build.ninja ]; then \
	echo "$(strip $(3) $(MESON) setup $(1) $(SETUP_OPTS) $(2))"; \
	$(3) $(MESON) setup $(1) $(SETUP_OPTS) $(2); \
	elif ! grep -q -e '-DDMM_LOCKDEP=1' $(1)/build.ninja; then \
	echo "$(MESON) configure $(1) -Dlockdep=true"; \
	$(MESON) configure $(1) -Dlockdep=true; fi

.NOTPARALLEL:
.PHONY: all deps check check-testlist check-default check-clang check-asan check-tsan \
	demo bench bench-scale release clean fuzz

all: deps
	$(call setup,$(BUILD))
	$(NINJA) -C $(BUILD)

# Install what is missing, with sudo unless we are root.
deps:
	@if [ -z "$(strip $(DEPS_PKGS))" ]; then exit 0; fi; \
	if ! command -v dpkg-query >/dev/null 2>&1; then \
		echo "deps: no dpkg-query; make sure these are installed: $(DEPS_PKGS)"; exit 0; \
	fi; \
	missing=; \
	for p in $(DEPS_PKGS); do \
		dpkg-query -W -f='$${Status}\n' "$$p" 2>/dev/null | \
			grep -q '^install ok installed$$' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		sudo=; [ "$$(id -u)" = 0 ] || sudo=sudo; \
		echo "deps: installing$$missing"; \
		$$sudo apt-get update && \
		$$sudo env DEBIAN_FRONTEND=noninteractive \
			apt-get install -y --no-install-recommends $$missing; \
	fi

check: check-testlist check-default check-clang check-asan check-tsan fuzz
	@skipped=$$(cat $(BUILD_ASAN)/sanitizer-skipped $(BUILD_TSAN)/sanitizer-skipped 2>/dev/null); \
	if [ -n "$$skipped" ]; then \
		echo "make check: passed, but SKIPPED on this machine:"; echo "$$skipped"; \
	else \
		echo "make check: all passed"; \
	fi

# Every tests/test_*.c must be listed in tests/meson.build, or it never runs.
check-testlist:
	@fail=0; \
	for f in tests/test_*.c; do \
		[ -e "$$f" ] || continue; \
		n=$$(basename "$$f" .c); \
		if ! grep -q "'$$n'" tests/meson.build; then \
			echo "$$f is not listed in test_names in tests/meson.build"; fail=1; \
		fi; \
	done; \
	exit $$fail

check-default: all
	$(TEST) -C $(BUILD)
	./$(BUILD)/devmm bench --quick

check-clang: deps
	$(call setup,$(BUILD_CLANG),,CC=clang)
	$(NINJA) -C $(BUILD_CLANG)
	$(TEST) -C $(BUILD_CLANG)

# tests/run-sanitized runs the tests with ASLR off where this kernel's
# address-space layout defeats the sanitizer runtimes (see the script).
check-asan: deps
	$(call setup,$(BUILD_ASAN),-Db_sanitize=address$(comma)undefined -Db_lundef=false)
	$(NINJA) -C $(BUILD_ASAN)
	$(SAN_ENV) tests/run-sanitized $(BUILD_ASAN) address,undefined \
		$(TEST) -C $(BUILD_ASAN) --timeout-multiplier 3

check-tsan: deps
	$(call setup,$(BUILD_TSAN),-Db_sanitize=thread)
	$(NINJA) -C $(BUILD_TSAN)
	$(TSAN_ENV) tests/run-sanitized $(BUILD_TSAN) thread \
		$(TEST) -C $(BUILD_TSAN) --suite concurrency --timeout-multiplier 5

demo: all
	./$(BUILD)/devmm demo

# libFuzzer on the scenario-language parser and on the trace reader (clang),
# each for a bounded time; the first seeded with every script of the tree,
# the second with traces of every `devmm trace gen` pattern (written by
# tests/fuzz/trace_seeds.c). FUZZ_SECONDS=N to fuzz each longer.
FUZZ_SECONDS ?= 30
BUILD_FUZZ := build-fuzz
FUZZ_CFLAGS := -std=gnu11 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
# The front end's sources: the scenario language and the trace reader.
FUZZ_SRCS := cli/alloc.c cli/diag.c cli/errname.c cli/expand.c cli/lex.c cli/parse.c \
	cli/parse_arg.c cli/parse_opt.c cli/script.c cli/subst.c cli/validate.c \
	cli/trace_parse.c cli/trace_check.c cli/trace_gen.c
# $(call fuzz_run,NAME,CORPUS,MAX_LEN): run build-fuzz/NAME on CORPUS with inputs
# of at most MAX_LEN bytes; fail on a crash. The trace reader gets inputs
# past its line limit (4096) and its read buffer (68 KiB), so that the
# overlong-line and refill paths are reached.
fuzz_run = ./$(BUILD_FUZZ)/$(1) -max_total_time=$(FUZZ_SECONDS) -max_len=$(3) -timeout=10 \
		-rss_limit_mb=2048 -print_final_stats=1 $(2) > $(BUILD_FUZZ)/$(1).log 2>&1; \
		rc=$$?; tail -n 12 $(BUILD_FUZZ)/$(1).log; \
		[ $$rc -eq 0 ] && echo "fuzz: $(1): no crash in $(FUZZ_SECONDS) s" || \
		echo "fuzz: $(1): FAILED (see $(BUILD_FUZZ)/$(1).log)"; \
		exit $$rc
fuzz: deps
	@mkdir -p $(BUILD_FUZZ)/corpus $(BUILD_FUZZ)/corpus-trace
	clang $(FUZZ_CFLAGS) -Icli $(FUZZ_SRCS) tests/fuzz/fuzz_parse.c -lm -o $(BUILD_FUZZ)/fuzz_parse
	clang $(FUZZ_CFLAGS) -Icli $(FUZZ_SRCS) tests/fuzz/fuzz_trace.c -lm -o $(BUILD_FUZZ)/fuzz_trace
	clang -std=gnu11 -g -O1 -Icli $(FUZZ_SRCS) tests/fuzz/trace_seeds.c -lm \
		-o $(BUILD_FUZZ)/trace_seeds
	@cp tests/cli/dmm/*.dmm tests/scenarios/*.dmm $(BUILD_FUZZ)/corpus/ 2>/dev/null || true
	./$(BUILD_FUZZ)/trace_seeds $(BUILD_FUZZ)/corpus-trace
	@$(call fuzz_run,fuzz_parse,$(BUILD_FUZZ)/corpus,4096)
	@$(call fuzz_run,fuzz_trace,$(BUILD_FUZZ)/corpus-trace,131072)

# The full run takes about a minute; docs/performance.md shows one (refresh
# its picture with: cp build-release/bench.png docs/performance.png). It
# measures a release build without the lock assertions (-Dlockdep=false,
# the default), not the test builds.
release: DEPS_PKGS += $(BENCH_PKGS)
release: deps
	@if [ ! -f $(BUILD_RELEASE)/build.ninja ]; then \
		echo "$(MESON) setup $(BUILD_RELEASE) -Dbuildtype=release -Db_ndebug=true -Dlockdep=false -Dtests=disabled"; \
		$(MESON) setup $(BUILD_RELEASE) -Dbuildtype=release -Db_ndebug=true -Dlockdep=false -Dtests=disabled; \
	fi
	$(NINJA) -C $(BUILD_RELEASE) devmm

bench: release
	./$(BUILD_RELEASE)/devmm bench --json $(BUILD_RELEASE)/bench.json
	bench/plot.sh $(BUILD_RELEASE)/bench.json $(BUILD_RELEASE)/bench.png

# Not part of `make bench` (a minute more); refresh the chart of
# docs/performance.md with: cp build-release/scale.png docs/performance-scale.png
bench-scale: release
	./$(BUILD_RELEASE)/devmm bench --only scale_64g,scale_sweep --json $(BUILD_RELEASE)/scale.json
	bench/plot-scale.sh $(BUILD_RELEASE)/scale.json $(BUILD_RELEASE)/scale.png

clean:
	rm -rf $(BUILD) $(BUILD_ASAN) $(BUILD_TSAN) $(BUILD_CLANG) $(BUILD_RELEASE) $(BUILD_FUZZ)
