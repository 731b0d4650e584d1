# godwit: one Makefile. `make` builds the CLI/shim and the guest agent; `make guest` builds the
# guest kit (kernel + initramfs); `make check` runs unit and end-to-end tests; `make check-asan`
# the same under ASan+UBSan; `make fuzz` runs each libFuzzer target briefly; `make bench` runs
# the benchmarks.
CC        ?= gcc
BUILD     ?= build
CFLAGS    ?= -O2 -g
# the project's own flags stay even when CFLAGS is given on the command line (check-asan)
GW_CFLAGS := $(CFLAGS) -std=gnu11 -Wall -Wextra -Werror -Iinclude -D_GNU_SOURCE
LDLIBS    += -larchive -ljson-c -lssl -lcrypto -lmnl
SAN_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined

# One archive per layer (docs/architecture.md), linked from the top down, so a call from a
# lower layer into a higher one fails to link; scripts/check-layers.sh fails the build on an
# include that points up a layer.
LAYERS     := cli shim migproto image hv hostnet common
layer_srcs  = $(sort $(filter-out src/cli/main.c src/cli/oci_main.c src/shim/main.c,$(wildcard src/$(1)/*.c)))
LIB_SRCS   := $(foreach l,$(LAYERS),$(call layer_srcs,$(l)))
LIBS       := $(LAYERS:%=$(BUILD)/lib%.a)
SHIM_LIBS  := $(filter-out $(BUILD)/libcli.a,$(LIBS))
AGENT_SRCS := $(sort $(wildcard guest/agent/*.c)) src/common/err.c src/common/frame.c \
              src/common/link.c
AGENT_OBJS := $(AGENT_SRCS:%.c=$(BUILD)/agent/%.o)
UNIT_SRCS  := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BINS  := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)
FUZZ_SRCS  := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BINS  := $(FUZZ_SRCS:tests/fuzz/%.c=$(BUILD)/fuzz/%)
FUZZ_TIME  ?= 20

.PHONY: all guest check check-unit check-asan fuzz bench clean
all: $(BUILD)/godwit $(BUILD)/godwit-shim $(BUILD)/godwit-runtime $(BUILD)/godwit-agent

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(GW_CFLAGS) -MMD -MP -c $< -o $@

define layer_rule
$(BUILD)/lib$(1).a: $(patsubst %.c,$(BUILD)/%.o,$(call layer_srcs,$(1))) | $(BUILD)/layers.ok
	rm -f $$@ && ar rcs $$@ $$^
endef
$(foreach l,$(LAYERS),$(eval $(call layer_rule,$(l))))

# every include points down a layer (or stays in its own): checked before anything links
$(BUILD)/layers.ok: scripts/check-layers.sh $(wildcard src/*/*.c src/*/*.h include/godwit/*.h guest/agent/*.c guest/agent/*.h)
	@mkdir -p $(BUILD)
	scripts/check-layers.sh
	@touch $@

$(BUILD)/godwit: $(BUILD)/src/cli/main.o $(LIBS)
	$(CC) $(GW_CFLAGS) -o $@ $^ $(LDFLAGS) $(LDLIBS)

# The OCI runtime (docs/oci-runtime.md): runc's command line over the same layers.
$(BUILD)/godwit-runtime: $(BUILD)/src/cli/oci_main.o $(LIBS)
	$(CC) $(GW_CFLAGS) -o $@ $^ $(LDFLAGS) $(LDLIBS)

# The shim links no CLI, and only the libraries its objects use.
$(BUILD)/godwit-shim: $(BUILD)/src/shim/main.o $(SHIM_LIBS)
	$(CC) $(GW_CFLAGS) -o $@ $^ $(LDFLAGS) -Wl,--as-needed $(LDLIBS)

# The guest agent is PID 1 in the guest: static, no host libraries but json-c.
$(BUILD)/agent/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(filter-out -fsanitize=% -fno-sanitize-recover=%,$(GW_CFLAGS)) -DGW_AGENT -MMD -MP -c $< -o $@

$(BUILD)/godwit-agent: $(AGENT_OBJS)
	$(CC) -static -o $@ $^ -ljson-c

$(BUILD)/tests/%: tests/unit/%.c $(LIBS)
	@mkdir -p $(dir $@)
	$(CC) $(GW_CFLAGS) -Itests/unit -o $@ $^ $(LDFLAGS) $(LDLIBS) -lcmocka

# the end-to-end tests' fault injection (tests/lib/mig_stall.c), preloaded into a shim: never
# sanitized, so that it loads into any process the variable reaches
$(BUILD)/tests/mig_stall.so: tests/lib/mig_stall.c
	@mkdir -p $(dir $@)
	$(CC) -O2 -std=gnu11 -Wall -Wextra -Werror -shared -fPIC -o $@ $< -ldl

guest: $(BUILD)/godwit-agent
	BUILD=$(BUILD) guest/kit/build.sh

check-unit: $(UNIT_BINS)
	@tests/run-unit.sh $(UNIT_BINS)

# unit tests, then every end-to-end test; the last line is "N passed, N failed"
check: all guest $(UNIT_BINS) $(BUILD)/tests/mig_stall.so
	@BUILD=$(BUILD) tests/check.sh

check-asan:
	$(MAKE) BUILD=build-asan CFLAGS="-O1 -g $(SAN_FLAGS)" LDFLAGS="$(SAN_FLAGS)" check

# libFuzzer targets: clang, each linked with the library sources it exercises.
$(BUILD)/fuzz/%: tests/fuzz/%.c $(filter-out src/cli/%,$(LIB_SRCS))
	@mkdir -p $(dir $@)
	clang -std=gnu11 -g -O1 -Iinclude -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined \
		-o $@ $^ $(LDLIBS)

fuzz: $(FUZZ_BINS)
	@for f in $(FUZZ_BINS); do \
		n=$$(basename $$f); mkdir -p $(BUILD)/corpus/$$n tests/fuzz/corpus/$$n; \
		if $$f -max_total_time=$(FUZZ_TIME) -max_len=65536 $(BUILD)/corpus/$$n \
			tests/fuzz/corpus/$$n > $(BUILD)/corpus/$$n.log 2>&1; then \
			echo "fuzz: $$n: $$(grep -o 'Done [0-9]* runs' $(BUILD)/corpus/$$n.log), no crash"; \
		else tail -n 30 $(BUILD)/corpus/$$n.log; echo "fuzz: $$n FAILED"; exit 1; fi; \
	done

bench: all guest
	@BUILD=$(BUILD) bench/run.sh

clean:
	rm -rf build build-asan

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
