# cairn — one non-recursive Makefile.
#   make                  build everything into build/
#   make test             install missing packages, build, run every test
#   make test-ansible     deploy with ansible/ onto namespace test hosts and check it (root)
#   make run [DIR=path] [TLS=1]   install, build, start a local cluster in the foreground (TLS=1: HTTPS)
#   make SANITIZER=address|undefined   instrumented build (into build-<sanitizer>/)
#   make deps             install missing Debian packages
#   make bench            benchmark a fresh local cluster against nginx (< 10 min; docs/benchmarks.md)
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
# Fuzz targets tests/fuzz/fuzz_<name>.c; each also builds, with the normal
# compiler, into $(B)/tests/fuzz/<name>_test, which replays its corpus.
FUZZ_SRC    := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_NAMES  := $(patsubst tests/fuzz/fuzz_%.c,%,$(FUZZ_SRC))
REPLAY_BINS := $(FUZZ_NAMES:%=$(B)/tests/fuzz/%_test)

all: $(BINS) $(UNIT_BINS) $(REPLAY_BINS)

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
            python3-boto3 python3-prometheus-client rclone s3cmd ansible ansible-lint openssh-server nginx-light \
            openssl
deps:
	@tools/deps.sh $(DEB_PKGS)

# make run TLS=1: a new cluster serves S3 over HTTPS with a generated self-signed pair (DIR/tls/)
DIR ?= run
run: deps all
	tools/cairn-cluster $(if $(filter 1,$(TLS)),--tls) run $(DIR)

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

# ---- fuzzing (tests/fuzz/README.md) ----
# Corpus replay: every target linked with tests/fuzz/replay.c instead of
# libFuzzer, built like a unit test (run-all.sh runs $(B)/tests/*/*_test).
$(B)/obj/tests/fuzz/%.o: CPPFLAGS += -Igateway
$(B)/tests/fuzz/%_test: $(B)/obj/tests/fuzz/fuzz_%.o $(B)/obj/tests/fuzz/replay.o $(call svc_objs,$(GATEWAY_SRC)) $(LIBCAIRN)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)

# make fuzz [FUZZ=name ...] [FUZZ_SECONDS=30]: build the libFuzzer binaries
# with clang, ASan and UBSan (any report is a crash) into build-fuzz/, then
# run each in turn for FUZZ_SECONDS on tests/fuzz/corpus/<name>/ with
# tests/fuzz/<name>.dict. New inputs land in build-fuzz/new/<name>/ and
# crashes in build-fuzz/crash-*; `make fuzz-merge` folds the new inputs
# that add coverage into the committed corpora.
FZ         ?= build-fuzz
FUZZ       ?= $(FUZZ_NAMES)
FUZZ_SECONDS ?= 30
FUZZ_CFLAGS := -g -O1 -fno-omit-frame-pointer -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all
FUZZ_LINK   := -fsanitize=fuzzer,address,undefined
FZ_COMMON   := $(COMMON_SRC:%.c=$(FZ)/obj/%.o)
FZ_GW       := $(patsubst %.c,$(FZ)/obj/%.o,$(filter-out %/main.c,$(GATEWAY_SRC)))
$(FZ)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CLANG   $<")
	$(Q)clang $(CPPFLAGS) -Igateway $(FUZZ_CFLAGS) -std=gnu11 -MMD -MP -c $< -o $@
$(FZ)/libcairn.a: $(FZ_COMMON)
	$(Q)rm -f $@ && ar rcs $@ $^
$(FZ)/libgw.a: $(FZ_GW)
	$(Q)rm -f $@ && ar rcs $@ $^
$(FZ)/fuzz_%: $(FZ)/obj/tests/fuzz/fuzz_%.o $(FZ)/libgw.a $(FZ)/libcairn.a
	@$(if $(Q),echo "  LD      $@")
	$(Q)clang $(FUZZ_LINK) -o $@ $^ $(PKG_LIBS)
fuzz-deps:
	@tools/deps.sh $(DEB_PKGS) clang
fuzz: fuzz-deps $(FUZZ:%=$(FZ)/fuzz_%)
	@for n in $(FUZZ); do mkdir -p $(FZ)/new/$$n tests/fuzz/corpus/$$n; \
	    d=; [ -f tests/fuzz/$$n.dict ] && d=-dict=../tests/fuzz/$$n.dict; \
	    echo "fuzzing $$n for $(FUZZ_SECONDS) s"; \
	    (cd $(FZ) && ./fuzz_$$n -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 $$d \
	        new/$$n ../tests/fuzz/corpus/$$n) >$(FZ)/$$n.log 2>&1; rc=$$?; \
	    grep -E "DONE|stat::number_of_executed_units" $(FZ)/$$n.log | tail -n 2; \
	    [ $$rc -eq 0 ] || { tail -n 40 $(FZ)/$$n.log; exit 1; }; done
fuzz-merge: $(FUZZ:%=$(FZ)/fuzz_%)
	@for n in $(FUZZ); do mkdir -p $(FZ)/new/$$n tests/fuzz/corpus/$$n; \
	    $(FZ)/fuzz_$$n -merge=1 tests/fuzz/corpus/$$n $(FZ)/new/$$n > $(FZ)/$$n.merge.log 2>&1 || exit 1; \
	    grep -E "MERGE-OUTER: [0-9]+ new files" $(FZ)/$$n.merge.log; done

clean:
	rm -rf build build-*

.SECONDARY:
.PHONY: all deps run test test-ansible bench fuzz fuzz-deps fuzz-merge faults clean
-include $(shell find $(B)/obj -name '*.d' 2>/dev/null)
ifneq ($(filter fuzz fuzz-merge $(FZ)/%,$(MAKECMDGOALS)),)
-include $(shell find $(FZ)/obj -name '*.d' 2>/dev/null)
endif
