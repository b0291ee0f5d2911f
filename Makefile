# pare — build, test, demo, bench.  `make help` lists the targets.
CC ?= gcc
PKGS := hdf5 lua5.4 gsl libpng
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS = $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CFLAGS ?= -O2 -g
# SANFLAGS: extra compile and link flags of the sanitizer builds (make check, make fuzz), empty here
SANFLAGS ?=
# -ffp-contract=off: no a*b+c fused into an FMA unless the code says so. GCC's ISO C mode already does this; clang
# (make check) contracts within a statement by default, which breaks the kernels' bit-identity with their references
CFLAGS += -std=c11 -D_GNU_SOURCE -Wall -Wextra -fopenmp -fno-math-errno -ffp-contract=off -Isrc $(PKG_CFLAGS) $(SANFLAGS)
# -lopenblas first: GSL's pkg-config adds its naive -lgslcblas, which must not win cblas_* symbols
LDLIBS = -lopenblas $(PKG_LIBS) -ldnnl -lcjson -lm -fopenmp

B := build
ENGINE_SRC := $(sort $(wildcard src/core/*.c src/kernels/*.c src/graph/*.c src/attn/*.c src/model/*.c \
                src/compress/*.c src/compress/*/*.c src/train/*.c src/data/*.c src/eval/*.c src/io/*.c src/lua/*.c src/text/*.c))
# generation (issue 12): the KV-cached decoder and the sampling loop
ENGINE_SRC += $(sort $(wildcard src/gen/*.c))
# MPI (issue 17), optional: src/dist/mpi.c when OpenMPI's headers are found (pkg-config ompi-c), else
# src/dist/serial.c, a world of one. PARE_MPI=0 builds without MPI even where it is installed. Only
# mpi.o sees mpi.h; every binary links the MPI library when it is used (docs/distributed.md).
PARE_MPI ?= auto
MPI_FOUND := $(if $(filter 0 no,$(PARE_MPI)),,$(shell pkg-config --exists ompi-c 2>/dev/null && echo yes))
ifeq ($(MPI_FOUND),yes)
ENGINE_SRC += src/dist/mpi.c
MPI_CFLAGS := $(shell pkg-config --cflags ompi-c)
LDLIBS += $(shell pkg-config --libs ompi-c) -lpthread
$(B)/src/dist/mpi.o: CFLAGS += $(MPI_CFLAGS)
else
ENGINE_SRC += src/dist/serial.c
endif
# tensor parallelism (issue 17): built with or without MPI (without, a world of one)
ENGINE_SRC += $(sort $(wildcard src/dist/tp*.c))
ENGINE_OBJ := $(ENGINE_SRC:%.c=$(B)/%.o)
TEST_SRC := $(sort $(wildcard tests/test_*.c))
TEST_BIN := $(TEST_SRC:tests/%.c=$(B)/tests/%)
LUA_TESTS := $(sort $(wildcard tests/*.lua))
SH_TESTS := $(sort $(wildcard tests/t_*.sh))
BENCH_SRC := $(sort $(wildcard bench/*.c))
BENCH_BIN := $(BENCH_SRC:bench/%.c=$(B)/bench/%)

GIT_COMMIT := $(shell git describe --always --dirty 2>/dev/null || echo unknown)

.PHONY: all deps build test demo bench clean help FORCE check fuzz fuzz-seeds zoo
all: build

help:
	@echo "make demo   install what is missing, build, run experiments/quickstart.lua"
	@echo "make test   install what is missing, build, run the TAP suite with prove"
	@echo "make check  the TAP suite built with ASan+UBSan (build-san/), then make fuzz for CHECK_FUZZ_SECONDS=$(CHECK_FUZZ_SECONDS) s"
	@echo "            each (docs/testing.md)"
	@echo "make fuzz   libFuzzer targets (build-san/, clang) for FUZZ_SECONDS=$(FUZZ_SECONDS) s each;"
	@echo "            a crash fails and is saved under fuzz/crashes/<target>/ (FUZZ_TARGETS='a b' picks some)"
	@echo "make bench  GEMM and encoder benchmarks, pare against PyTorch (python3-torch) -> results/bench.h5"
	@echo "make build  build build/pare and build/libpare.a only"
	@echo "make zoo    pretrain the zoo's bert-mini and gpt-mini into results/models/ (~30 min on 2 cores; docs/zoo.md)"

deps:
	@sh tools/deps.sh all

build: $(B)/pare pare

pare: $(B)/pare
	@ln -sf $(B)/pare pare

$(B)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

# the commit is baked into version.o, rebuilt only when it changes
$(B)/commit.stamp: FORCE
	@mkdir -p $(B); echo '$(GIT_COMMIT)' | cmp -s - $@ || echo '$(GIT_COMMIT)' > $@
$(B)/src/io/version.o: $(B)/commit.stamp
$(B)/src/io/version.o: CFLAGS += -DPARE_GIT_COMMIT='"$(GIT_COMMIT)"'

$(B)/libpare.a: $(ENGINE_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(B)/pare: $(B)/src/cli/main.o $(B)/libpare.a
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

$(B)/tests/%: tests/%.c tests/tap.h $(B)/libpare.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests -o $@ $< $(B)/libpare.a $(LDLIBS)

$(B)/bench/%: bench/%.c bench/bench_util.h bench/bench_peak.h $(B)/libpare.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(B)/libpare.a $(LDLIBS)

test: deps
	@$(MAKE) --no-print-directory build $(TEST_BIN)
	OMP_NUM_THREADS=$${OMP_NUM_THREADS:-2} prove --exec tests/run $(TEST_BIN) $(LUA_TESTS) $(SH_TESTS)

demo: deps
	@$(MAKE) --no-print-directory build
	./$(B)/pare run experiments/quickstart.lua

zoo: deps
	@$(MAKE) --no-print-directory build
	./$(B)/pare run experiments/zoo_build.lua

# make bench also wants python3-torch (the PyTorch reference, bench/torch_ref.py); without it that section is skipped
bench:
	@sh tools/deps.sh bench
	@$(MAKE) --no-print-directory build $(BENCH_BIN)
	./$(B)/pare run experiments/bench.lua

clean:
	rm -rf $(B) pare $(SAN_B)

# ---- make check and make fuzz: one sanitizer build beside the normal one (docs/testing.md) ----
# build-san/ reuses the rules above with clang and SANFLAGS; build/ is never touched. One build serves
# both: the TAP suite runs on it under ASan + UBSan (every UB report fatal), and the fuzz targets link
# it with libFuzzer. Coverage for libFuzzer is compiled into the files fuzz/coverage.allow lists only,
# so the kernels the suite leans on are not slowed by it.
SAN_B := build-san
SAN_CC := clang
SAN_FLAGS := -fsanitize=address,undefined,fuzzer-no-link -fsanitize-coverage-allowlist=fuzz/coverage.allow \
  -fno-sanitize-recover=all -fno-omit-frame-pointer -Wno-pass-failed
SAN_TEST_BIN := $(TEST_SRC:tests/%.c=$(SAN_B)/tests/%)
# prove -j2 starts the slowest tests under ASan first (~80-170 s, 60-150 s, 55-110 s, 50-60 s on a
# shared 2-core machine), so no long one is left running alone at the end
SAN_SLOW := tests/train.lua tests/attn_model.lua $(SAN_B)/tests/test_h5_durable tests/quant.lua
SAN_ALL := $(SAN_TEST_BIN) $(LUA_TESTS) $(SH_TESTS)
SAN_TESTS := $(filter $(SAN_ALL),$(SAN_SLOW)) $(filter-out $(SAN_SLOW),$(SAN_ALL))
# Leaks are findings (LeakSanitizer reports at exit and fails the test), except libomp's own thread
# bookkeeping (tools/lsan.supp); UB prints its stack. PARE_SANITIZED=1 skips the memory-peak checks.
SAN_ENV := PARE_BUILD=$(SAN_B) PARE_SANITIZED=1 ASAN_OPTIONS=$${ASAN_OPTIONS:-detect_leaks=1} \
  LSAN_OPTIONS=$${LSAN_OPTIONS:-suppressions=$(CURDIR)/tools/lsan.supp:print_suppressions=0} \
  UBSAN_OPTIONS=$${UBSAN_OPTIONS:-print_stacktrace=1}
FUZZ_SRC := $(sort $(wildcard fuzz/fuzz_*.c))
FUZZ_TARGETS ?= $(FUZZ_SRC:fuzz/fuzz_%.c=%)
FUZZ_SECONDS ?= 30
CHECK_FUZZ_SECONDS ?= 15
FUZZ_JOBS ?= 2
SAN_MAKE = $(MAKE) --no-print-directory B=$(SAN_B) CC=$(SAN_CC) SANFLAGS="$(SAN_FLAGS)"

check:
	@sh tools/deps.sh check
	@$(SAN_MAKE) $(SAN_B)/pare $(SAN_TEST_BIN)
	$(SAN_ENV) OMP_NUM_THREADS=$${OMP_NUM_THREADS:-2} prove -j2 --exec tests/run $(SAN_TESTS)
	@$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=$(CHECK_FUZZ_SECONDS)

fuzz:
	@sh tools/deps.sh fuzz
	@$(SAN_MAKE) $(FUZZ_TARGETS:%=$(SAN_B)/fuzz/fuzz_%)
	$(SAN_ENV) sh tools/fuzz.sh $(SAN_B) $(FUZZ_SECONDS) $(FUZZ_JOBS) $(FUZZ_TARGETS)

# a changed allowlist recompiles the sanitizer build
ifneq ($(findstring coverage-allowlist,$(SANFLAGS)),)
$(ENGINE_OBJ): fuzz/coverage.allow
endif

$(B)/fuzz/fuzz_%: fuzz/fuzz_%.c fuzz/fuzz_util.h $(B)/libpare.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -fsanitize=fuzzer -Ifuzz -o $@ $< $(B)/libpare.a $(LDLIBS)

# the binary seeds of fuzz/corpus (checkpoints, safetensors, HDF5), written by the normal build
fuzz-seeds: $(B)/libpare.a
	@mkdir -p $(B)/fuzz fuzz/corpus/checkpoint fuzz/corpus/safetensors fuzz/corpus/h5table
	$(CC) $(CFLAGS) -o $(B)/fuzz/gen_seeds fuzz/gen_seeds.c $(B)/libpare.a $(LDLIBS)
	./$(B)/fuzz/gen_seeds
	rm -f fuzz/corpus/h5table/.*.lock

-include $(ENGINE_OBJ:.o=.d) $(B)/src/cli/main.d
