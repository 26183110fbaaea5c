# cairn — one non-recursive Makefile.
#   make                  build everything into build/
#   make test             install missing packages, build, run every test
#   make test-ansible     deploy with ansible/ onto namespace test hosts and check it (root)
#   make run [DIR=path]   install, build, start a local cluster in the foreground
#   make SANITIZER=address|undefined   instrumented build (into build-<sanitizer>/)
#   make deps             install missing Debian packages
#   make bench            run the benchmarks
#   make faults           fault-injection suite, long form (FAULTS_SECONDS per scenario)

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

# Quiet by default; `make V=1` prints the full command lines.
ifeq ($(V),1)
Q :=
else
Q := @
endif

$(B)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) -c $< -o $@

$(LIBCAIRN): $(COMMON_OBJ)
	@mkdir -p $(dir $@)
	$(Q)rm -f $@ && ar rcs $@ $^

# Unit tests of a service see that service's private headers.
$(B)/obj/tests/unit/gateway/%.o: CPPFLAGS += -Igateway
$(B)/obj/tests/unit/storage-node/%.o: CPPFLAGS += -Istorage-node
$(B)/obj/tests/unit/metadata/%.o: CPPFLAGS += -Imetadata

svc_objs = $(patsubst %.c,$(B)/obj/%.o,$(filter-out %/main.c,$(1)))

$(B)/cairn-gateway: $(GATEWAY_SRC:%.c=$(B)/obj/%.o) $(LIBCAIRN)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)
$(B)/cairn-node: $(NODE_SRC:%.c=$(B)/obj/%.o) $(LIBCAIRN)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)
$(B)/cairn-meta: $(META_SRC:%.c=$(B)/obj/%.o) $(LIBCAIRN)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)
$(B)/cairn-bench: $(BENCH_SRC:%.c=$(B)/obj/%.o) $(LIBCAIRN)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)
$(B)/cairn-admin: $(ADMIN_SRC:%.c=$(B)/obj/%.o) $(LIBCAIRN)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)

$(B)/tests/common/%: $(B)/obj/tests/unit/common/%.o $(LIBCAIRN)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) -lcmocka
$(B)/tests/gateway/%: $(B)/obj/tests/unit/gateway/%.o $(call svc_objs,$(GATEWAY_SRC)) $(LIBCAIRN)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) -lcmocka
$(B)/tests/storage-node/%: $(B)/obj/tests/unit/storage-node/%.o $(call svc_objs,$(NODE_SRC)) $(LIBCAIRN)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) -lcmocka
$(B)/tests/metadata/%: $(B)/obj/tests/unit/metadata/%.o $(call svc_objs,$(META_SRC)) $(LIBCAIRN)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) -lcmocka

DEB_PKGS := build-essential pkg-config libh2o-evloop-dev libssl-dev libisal-dev libxxhash-dev \
            liblmdb-dev libinih-dev libcmocka-dev libraft-dev libuv1-dev libexpat1-dev curl awscli python3 \
            python3-boto3 ansible ansible-lint openssh-server
deps:
	@tools/deps.sh $(DEB_PKGS)

DIR ?= run
run: deps all
	tools/cairn-cluster run $(DIR)

# Tests build with -Werror, as CI does. After the whole suite, the unit tests
# and the core integration tests run again against an AddressSanitizer build.
ASAN_TESTS := ^unit/|test_objects|test_durability|test_auth
test: WERROR = 1
test: deps all
	$(MAKE) --no-print-directory SANITIZER=address WERROR=1 all
	tests/run-all.sh $(B) '' build-address '$(ASAN_TESTS)'

# The Ansible deployment onto network-namespace test hosts over SSH (root;
# make test runs it too, as tests/integration/test_ansible.sh).
test-ansible: deps all
	tests/ansible/rig.sh run $(B)

bench: deps all
	tools/bench.sh $(B)

# Fault injection, long form (the short form runs in make test): every fault
# type for FAULTS_SECONDS, then random combinations (tests/faults/run.py).
FAULTS_SECONDS ?= 90
faults: deps all
	CAIRN_BIN=$(B) CAIRN_FAULTS_SECONDS=$(FAULTS_SECONDS) python3 tests/faults/run.py

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

.SECONDARY:
.PHONY: all deps run test test-ansible bench fuzz faults clean
-include $(shell find $(B)/obj -name '*.d' 2>/dev/null)
