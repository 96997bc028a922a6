# Thin wrappers over the cargo commands people and CI run. Everything is idempotent.
#
#   make run     build everything and run `loader --json` on the built-in probes (root);
#                stdout is JSON lines only, until Ctrl-C
#   make install loader and cargo-bpf into $(PREFIX)/bin (default /usr/local)
#   make test    every test: unit, root-on-host-kernel, qemu kernels (root)
#   make bench   throughput and size figures (not part of test)

SHELL := /bin/bash
CARGO ?= cargo
export CARGO_TERM_COLOR ?= never

# Kernel headers for redbpf-probes' bindgen: KERNEL_SOURCE / KERNEL_VERSION from the
# environment win; otherwise a distribution's, fetched into kernel-headers/ (Debian's
# bookworm = 6.1 or bullseye = 5.10, Ubuntu's bionic = 4.15 or focal = 5.4).
KERNEL_HEADERS_RELEASE ?= bookworm
ifeq ($(strip $(KERNEL_SOURCE)$(KERNEL_VERSION)),)
export KERNEL_SOURCE := $(CURDIR)/kernel-headers/$(KERNEL_HEADERS_RELEASE)
HEADERS_STEP := kernel-headers
endif
export LIBCLANG_PATH ?= /usr/lib/llvm-14/lib

APT_PACKAGES := build-essential pkg-config libclang-14-dev clang libelf-dev zlib1g-dev libbpf-dev prometheus \
	iproute2 bpftool jq qemu-system-x86 busybox-static ca-certificates
BENCH_PACKAGES := bpftrace python3-bpfcc valgrind bc llvm-14

CARGO_BPF := target/release/cargo-bpf
LOADER := target/release/loader
PROGRAMS := target/bpf/programs

.PHONY: all deps bench-deps kernel-headers cargo-bpf probes compat-probes compat-situations loader run install test-make-run \
	test test-headers probes-bionic test-unit test-vm c-objects bench bench-report bench-probe bench-aya-reader soak clean-headers

all: loader

deps:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "make: installing $$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi
	@command -v cargo >/dev/null || { echo "make: cargo not found: install Rust (rustup) first" >&2; exit 1; }

bench-deps: deps
	@missing=$$(for p in $(BENCH_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi

kernel-headers:
	./kernel-headers/fetch.sh $(KERNEL_HEADERS_RELEASE)

cargo-bpf: deps
	$(CARGO) build --release -p cargo-bpf

probes: cargo-bpf $(HEADERS_STEP)
	cd probes && ../$(CARGO_BPF) bpf build --target-dir ../target

# A redbpf 2.x crate outside the workspace: proves the tool brings the drop-in macros itself.
compat-probes: cargo-bpf $(HEADERS_STEP)
	cd compat-probes && ../$(CARGO_BPF) bpf build --target-dir ../target --output-dir ../target/bpf/compat

# Issue 12's situations, one crate each in compat-probes/<situation>/ (an old Cargo.lock, a
# lock pinning redbpf-macros 2.2, a cargo-bpf build-dependency, master's printk!, ip.saddr,
# redbpf 1.x): each built from its own directory and left byte-identical, its objects
# verified by this kernel into target/bpf/compat-situations (not the VM tests' compat dir).
compat-situations: cargo-bpf loader $(HEADERS_STEP)
	./kernel-headers/fetch.sh bionic
	CARGO_BPF=$(CURDIR)/$(CARGO_BPF) LOADER=$(CURDIR)/$(LOADER) \
		BIONIC_HEADERS=$(CURDIR)/kernel-headers/bionic compat-probes/situations.sh

loader: probes
	LOADER_BUILTIN_PROBES=$(CURDIR)/$(PROGRAMS) $(CARGO) build --release -p loader

# stdout is the loader's JSON lines alone (`make run | jq .`): the build's output, make's
# echo of its commands included, goes to stderr. Runs until Ctrl-C (or SIGTERM).
run:
	@$(MAKE) --no-print-directory loader >&2
	@exec $(LOADER) --json

# `make run`'s stdout parses as JSON lines, line by line, and ends with the summary.
test-make-run: loader
	timeout -s INT 4 $(MAKE) --no-print-directory run 2>/dev/null > target/make-run.json; \
		jq -e -s 'length > 2 and .[0].type == "kernel" and .[-1].type == "summary"' \
		target/make-run.json > /dev/null

# The loader (with the built-in probes inside) and cargo-bpf into PREFIX/bin.
PREFIX ?= /usr/local
install: loader
	install -D -m 755 $(LOADER) $(PREFIX)/bin/loader
	install -D -m 755 $(CARGO_BPF) $(PREFIX)/bin/cargo-bpf

test: deps probes compat-probes loader test-make-run compat-situations test-headers probes-bionic test-unit test-vm fuzz-smoke

# fetch.sh's mirror discovery on fabricated apt layouts, then a real Ubuntu 18.04 fetch.
test-headers:
	./kernel-headers/test.sh

# The built-in probes compiled against Ubuntu 18.04's 4.15 headers (what a legacy host has
# locally; its iphdr has no anonymous union), in their own target directory so that the
# bookworm build stays fresh, then verified by the kernel here.
BIONIC_PROGRAMS := target/bpf/programs-bionic
probes-bionic: cargo-bpf loader
	./kernel-headers/fetch.sh bionic
	cd probes && KERNEL_SOURCE=$(CURDIR)/kernel-headers/bionic ../$(CARGO_BPF) bpf build \
		--target-dir ../target/headers-bionic --output-dir ../$(BIONIC_PROGRAMS)
	$(LOADER) --verify --json $(BIONIC_PROGRAMS)/*/*.elf > target/verify-bionic.json

test-unit:
	LOADER_BUILTIN_PROBES=$(CURDIR)/$(PROGRAMS) $(CARGO) test --release --workspace

# C objects for the VM scenarios, built as the root tests build them (clang -O2 -g -target
# bpf, libbpf's headers): libbpf-tools' ring buffer fallback, BTF maps fed by goebpf- and
# cilium-style free-form kprobes, the legacy map layouts of libbpf, iproute2 and goebpf, and
# kernel stack ids (symbolized in the guest).
C_OBJECTS_DIR := target/bpf/c-objects
C_OBJECTS := ringbuf_fallback btf_kprobes legacy_layouts kernel_stacks
c-objects: deps
	mkdir -p $(C_OBJECTS_DIR)
	for o in $(C_OBJECTS); do \
		clang -O2 -g -target bpf -I/usr/include/x86_64-linux-gnu -c userspace/tests/bpf/$$o.c \
			-o $(C_OBJECTS_DIR)/$$o.elf || exit 1; \
	done

# The harness and the loader are static: they run inside the guest's busybox initramfs.
STATIC_DIR := target/x86_64-unknown-linux-gnu/release
export VMTESTS_SKIP ?=
test-vm: probes compat-probes probes-bionic c-objects
	RUSTFLAGS='-C target-feature=+crt-static' LOADER_BUILTIN_PROBES=$(CURDIR)/$(PROGRAMS) \
		$(CARGO) build --release --target x86_64-unknown-linux-gnu -p vm-tests -p loader
	$(STATIC_DIR)/vm-tests --loader $(STATIC_DIR)/loader --objects $(CURDIR)/$(PROGRAMS) \
		--extra-objects $(CURDIR)/target/bpf/compat --extra-objects $(CURDIR)/$(C_OBJECTS_DIR)
	@# Ubuntu 18.04 again, with the probes built against its own headers (probes-bionic).
	$(STATIC_DIR)/vm-tests --loader $(STATIC_DIR)/loader --objects $(CURDIR)/$(BIONIC_PROGRAMS) \
		--extra-objects $(CURDIR)/target/bpf/compat --extra-objects $(CURDIR)/$(C_OBJECTS_DIR) --kernel 4.15

# The throughput benchmark's probe (a redbpf crate outside the workspace, like compat-probes)
# and its aya 0.14 comparison reader.
bench-probe: cargo-bpf $(HEADERS_STEP)
	cd bench/probe && ../../$(CARGO_BPF) bpf build --target-dir ../../target --output-dir ../../target/bpf/bench

bench-aya-reader:
	$(CARGO) build --release -p aya-reader

# One run directory for the whole bench (raw logs, results.jsonl: bench/lib.sh);
# bench-report writes README's Benchmarks tables from the latest one.
bench: bench-deps loader bench-probe bench-aya-reader
	@set -o pipefail; export BENCH_RUN_DIR=$(CURDIR)/target/bench/runs/$$(date -u +%Y%m%dT%H%M%SZ); \
	mkdir -p $$BENCH_RUN_DIR && \
	bench/insn-count.sh | tee $$BENCH_RUN_DIR/insn-count.txt && \
	bench/build-times.sh | tee $$BENCH_RUN_DIR/build-times.txt && \
	bench/startup.sh && \
	bench/throughput.sh && \
	bench/callgrind.sh && \
	bench/metrics.sh && \
	bench/symbolize.sh

bench-report:
	bench/report.py

# Issue 6: SOAK_SECS (600) at SOAK_RATE calls/s; lost must equal offered - delivered and
# RSS stay flat. Not part of test.
soak: loader bench-probe
	bench/soak.sh

# libFuzzer over every parser of outside input (fuzz/, its own workspace): each target
# for 30 s (fuzz-smoke, part of test) or FUZZ_SECS (fuzz), one process at a time, on
# stable Rust. Installs cargo-fuzz when missing. See fuzz/README.md.
FUZZ_SECS ?= 600
.PHONY: fuzz fuzz-smoke
fuzz-smoke: probes
	CARGO=$(CARGO) fuzz/run.sh 30

fuzz: probes
	CARGO=$(CARGO) fuzz/run.sh $(FUZZ_SECS)

clean-headers:
	rm -rf kernel-headers/bookworm kernel-headers/bullseye kernel-headers/bionic \
		kernel-headers/focal kernel-headers/.cache
