# cairn — one non-recursive Makefile.
#   make                  build everything into build/
#   make test             install missing packages, build, run every test
#   make run [DIR=path]   install, build, start a local cluster in the foreground
#   make SANITIZER=address|undefined   instrumented build (into build-<sanitizer>/)
#   make deps             install missing Debian packages
#   make bench            run the benchmarks

SANITIZER ?=
ifeq ($(SANITIZER),)
B := build
else
B := build-$(SANITIZER)
endif

CC      ?= cc
PKGS    := libh2o-evloop openssl libisal libxxhash lmdb inih raft libuv expat
CPPFLAGS += -Icommon/include -DH2O_USE_LIBUV=0 -D_GNU_SOURCE
CFLAGS  ?= -O2 -g
CFLAGS  += -std=gnu11 -Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers -pthread -MMD -MP
CFLAGS  += $(if $(WERROR),-Werror)
ifneq ($(SANITIZER),)
CFLAGS  += -fsanitize=$(SANITIZER) -fno-omit-frame-pointer -fno-sanitize-recover=all
LDFLAGS += -fsanitize=$(SANITIZER)
endif
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lcrypto -lpthread -lm
CPPFLAGS += $(PKG_CFLAGS)

COMMON_SRC := $(sort $(wildcard common/src/*.c))
COMMON_OBJ := $(COMMON_SRC:%.c=$(B)/obj/%.o)
LIBCAIRN   := $(B)/libcairn.a

GATEWAY_SRC := $(sort $(wildcard gateway/*.c))
NODE_SRC    := $(sort $(wildcard storage-node/*.c))
META_SRC    := $(sort $(wildcard metadata/*.c))
BENCH_SRC   := $(sort $(wildcard tools/bench/*.c))
ADMIN_SRC   := $(sort $(wildcard tools/admin/*.c))

BINS := $(B)/cairn-gateway $(B)/cairn-node $(B)/cairn-meta
ifneq ($(BENCH_SRC),)
BINS += $(B)/cairn-bench
endif
ifneq ($(ADMIN_SRC),)
BINS += $(B)/cairn-admin
endif

# Unit tests: tests/unit/<area>/<mod>_test.c -> $(B)/tests/<mod>_test.
# A test of a service module links that service's objects except main.c.
UNIT_SRC  := $(sort $(wildcard tests/unit/*/*_test.c))
UNIT_BINS := $(patsubst tests/unit/%.c,$(B)/tests/%,$(UNIT_SRC))

all: $(BINS) $(UNIT_BINS)

$(B)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c $< -o $@

$(LIBCAIRN): $(COMMON_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

# Unit tests of a service see that service's private headers.
$(B)/obj/tests/unit/gateway/%.o: CPPFLAGS += -Igateway
$(B)/obj/tests/unit/storage-node/%.o: CPPFLAGS += -Istorage-node
$(B)/obj/tests/unit/metadata/%.o: CPPFLAGS += -Imetadata

svc_objs = $(patsubst %.c,$(B)/obj/%.o,$(filter-out %/main.c,$(1)))

$(B)/cairn-gateway: $(GATEWAY_SRC:%.c=$(B)/obj/%.o) $(LIBCAIRN)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)
$(B)/cairn-node: $(NODE_SRC:%.c=$(B)/obj/%.o) $(LIBCAIRN)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)
$(B)/cairn-meta: $(META_SRC:%.c=$(B)/obj/%.o) $(LIBCAIRN)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)
$(B)/cairn-bench: $(BENCH_SRC:%.c=$(B)/obj/%.o) $(LIBCAIRN)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)
$(B)/cairn-admin: $(ADMIN_SRC:%.c=$(B)/obj/%.o) $(LIBCAIRN)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)

$(B)/tests/common/%: $(B)/obj/tests/unit/common/%.o $(LIBCAIRN)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) -lcmocka
$(B)/tests/gateway/%: $(B)/obj/tests/unit/gateway/%.o $(call svc_objs,$(GATEWAY_SRC)) $(LIBCAIRN)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) -lcmocka
$(B)/tests/storage-node/%: $(B)/obj/tests/unit/storage-node/%.o $(call svc_objs,$(NODE_SRC)) $(LIBCAIRN)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) -lcmocka
$(B)/tests/metadata/%: $(B)/obj/tests/unit/metadata/%.o $(call svc_objs,$(META_SRC)) $(LIBCAIRN)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) -lcmocka

DEB_PKGS := build-essential pkg-config libh2o-evloop-dev libssl-dev libisal-dev libxxhash-dev \
            liblmdb-dev libinih-dev libcmocka-dev libraft-dev libuv1-dev libexpat1-dev curl awscli python3 \
            python3-boto3
deps:
	@tools/deps.sh $(DEB_PKGS)

DIR ?= run
run: deps all
	tools/cairn-cluster run $(DIR)

# Tests build with -Werror, as CI does.
test: WERROR = 1
test: deps all
	tests/run-all.sh $(B)

bench: deps all
	tools/bench.sh $(B)

# Fuzz targets (libFuzzer, clang): build, then run each for FUZZ_SECONDS on its corpus.
FUZZ_SRC := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BINS := $(patsubst tests/fuzz/%.c,build-fuzz/%,$(FUZZ_SRC))
FUZZ_SECONDS ?= 30
build-fuzz/%: tests/fuzz/%.c $(COMMON_SRC)
	@mkdir -p build-fuzz
	clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -DH2O_USE_LIBUV=0 -Icommon/include $(PKG_CFLAGS) \
	    -o $@ $< $(COMMON_SRC) $(PKG_LIBS)
fuzz: deps $(FUZZ_BINS)
	@for f in $(FUZZ_BINS); do n=$${f#build-fuzz/fuzz_}; mkdir -p tests/fuzz/corpus/$$n; \
	    echo "fuzzing $$n for $(FUZZ_SECONDS) s"; \
	    $$f -max_total_time=$(FUZZ_SECONDS) -print_final_stats=0 tests/fuzz/corpus/$$n 2>&1 | tail -n 2 || exit 1; done

clean:
	rm -rf build build-*

.PHONY: all deps run test bench fuzz clean
-include $(shell find $(B)/obj -name '*.d' 2>/dev/null)
