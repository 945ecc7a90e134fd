# shoal — BitTorrent tracker daemon. GNU make.
# Targets: deps node-deps all test check-sanitize fuzz run clean install bench lint lint-man
SHELL := /bin/bash
CXX      ?= g++
BUILD    ?= build
OPT      ?= -O2 -g
CXXFLAGS ?= $(OPT)
CXXFLAGS += -std=c++20 -Wall -Wextra -Werror=return-type -pthread -MMD -MP -I. -I$(BUILD)/gen
LDLIBS   := -lhttp_parser -levent_core -levent -levent_openssl -lssl -lcrypto -ljansson -lsimdjson -lwslay -luring -lconfig++ -ltorrent-rasterbar -lnats -lz -lrt -pthread
# libtorrent-rasterbar's ABI depends on its -D flags: the one file that includes it gets them.
LT_CFLAGS = $(shell pkg-config --cflags libtorrent-rasterbar 2>/dev/null)
GTEST_LIBS := -lgtest -lgtest_main
PREFIX   ?= /usr/local
PYTHON   ?= /usr/bin/python3

DEB_PACKAGES := build-essential g++ make pkg-config libevent-dev libssl-dev libjansson-dev libsimdjson-dev libwslay-dev liburing-dev \
  libconfig++-dev zlib1g-dev libboost-dev libgtest-dev libtorrent-rasterbar-dev python3 python3-libtorrent aria2 mktorrent curl openssl \
  procps iproute2 util-linux prometheus mandoc man-db clang libclang-rt-14-dev python3-websocket nodejs \
  faketime nats-server libnats-dev libhttp-parser-dev

LIB_SRCS  := $(wildcard shm/*.cpp conf/*.cpp worker/*.cpp) $(filter-out supervisor/main.cpp,$(wildcard supervisor/*.cpp))
LIB_OBJS  := $(patsubst %.cpp,$(BUILD)/obj/%.o,$(LIB_SRCS)) $(BUILD)/obj/gen/default_conf.o
TEST_SRCS := $(wildcard tests/unit/*.cpp)
TEST_OBJS := $(patsubst %.cpp,$(BUILD)/obj/%.o,$(TEST_SRCS))
TOOL_SRCS := $(wildcard tools/*.cpp)
TOOLS     := $(patsubst tools/%.cpp,$(BUILD)/%,$(TOOL_SRCS))

.PHONY: layout-test all deps deb-deps node-deps test unit integration check-sanitize fuzz run clean install bench lint lint-man
# Keep object files of tools (intermediate in the pattern chain) so a second make rebuilds nothing.
.SECONDARY:
all: $(BUILD)/shoald $(BUILD)/unit_tests $(TOOLS) $(BUILD)/layout-test/shoald

deps: deb-deps
	@$(MAKE) --no-print-directory node-deps

# The Debian packages alone (.ci/run installs the npm packages while it compiles).
deb-deps:
	@missing=""; for p in $(DEB_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then echo "installing:$$missing"; \
	  (apt-get update -qq || true) && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	else echo "deps: all Debian packages present"; fi

# npm packages of the WebTorrent integration tests (tests/integration/webtorrent/package-lock.json):
# `npm ci` when node_modules is missing or the lock or package.json changed since the last install
# (stamp: their sha256 in node_modules/.shoal-stamp). Debian's npm only where nodejs came without one.
# --ignore-scripts: every native part used (@roamhq/wrtc) ships its binary in an npm package.
WT_NODE := tests/integration/webtorrent
node-deps:
	@command -v npm >/dev/null || { (apt-get update -qq || true) && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm; }
	@stamp="$$(cat $(WT_NODE)/package.json $(WT_NODE)/package-lock.json | sha256sum)"; \
	if [ "$$(cat $(WT_NODE)/node_modules/.shoal-stamp 2>/dev/null)" = "$$stamp" ]; then echo "deps: npm packages present"; \
	else echo "installing npm packages into $(WT_NODE)"; \
	  (cd $(WT_NODE) && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error) && echo "$$stamp" > $(WT_NODE)/node_modules/.shoal-stamp; fi

$(BUILD)/gen/default_conf.cpp: conf/shoal.conf
	@mkdir -p $(dir $@)
	@{ echo '// Generated from conf/shoal.conf by the Makefile. Do not edit.'; \
	   echo 'namespace shoal::conf { extern const char kDefaultConfigText[] = R"SHOALCONF('; \
	   cat $<; echo ')SHOALCONF"; }'; } > $@

$(BUILD)/obj/gen/default_conf.o: $(BUILD)/gen/default_conf.cpp
	@mkdir -p $(dir $@)
	$(CXX) $(CXXFLAGS) -c $< -o $@

$(BUILD)/obj/supervisor/torrent_file.o: CXXFLAGS += $(LT_CFLAGS)
$(BUILD)/obj/%.o: %.cpp
	@mkdir -p $(dir $@)
	$(CXX) $(CXXFLAGS) -c $< -o $@

$(BUILD)/libshoal.a: $(LIB_OBJS)
	@rm -f $@; ar rcs $@ $^

$(BUILD)/shoald: $(BUILD)/obj/supervisor/main.o $(BUILD)/libshoal.a
	$(CXX) $(CXXFLAGS) $^ -o $@ $(LDLIBS)

# The layout-test shoald (tests/integration/test_snapshot.py): the same program with another shm
# layout version (SHM_LAYOUT_TEST_BUMP added to it), as after an upgrade that changed the layout.
# Only shm/layout_version.cpp is compiled again; linked before libshoal.a, its kLayoutVersion
# replaces the archive's (a second link, no second build of the library).
SHM_LAYOUT_TEST_BUMP ?= 1
$(BUILD)/obj/layout-test/layout_version.o: shm/layout_version.cpp
	@mkdir -p $(dir $@)
	$(CXX) $(CXXFLAGS) -DSHOAL_SHM_LAYOUT_TEST_BUMP=$(SHM_LAYOUT_TEST_BUMP) -c $< -o $@

$(BUILD)/layout-test/shoald: $(BUILD)/obj/supervisor/main.o $(BUILD)/obj/layout-test/layout_version.o $(BUILD)/libshoal.a
	@mkdir -p $(dir $@)
	$(CXX) $(CXXFLAGS) $^ -o $@ $(LDLIBS)

layout-test: $(BUILD)/layout-test/shoald

# ws_load's messages are tested against shoald's codec (tests/unit/ws_load_messages_test.cpp).
$(BUILD)/unit_tests: $(TEST_OBJS) $(BUILD)/libshoal.a $(BUILD)/obj/tools/ws/wt_messages.o
	$(CXX) $(CXXFLAGS) $^ -o $@ $(GTEST_LIBS) $(LDLIBS)

# Objects first, the archive last (tools/ws/ uses worker/ code from it).
$(BUILD)/%: $(BUILD)/obj/tools/%.o $(BUILD)/libshoal.a
	$(CXX) $(CXXFLAGS) $(filter %.o,$^) $(filter %.a,$^) -o $@ $(LDLIBS)

# ws_load's WebSocket client and WebTorrent messages live in tools/ws/ (not tools of their own).
$(BUILD)/ws_load: $(patsubst %.cpp,$(BUILD)/obj/%.o,$(wildcard tools/ws/*.cpp))

# The README's test command: unit tests, then integration tests against a real shoald, TEST_JOBS
# files at a time (tests/run_tests.py: a few files, ALONE there, run by themselves).
TEST_JOBS ?= 2
test: deps all
	@$(PYTHON) tests/run_tests.py --build $(BUILD) --jobs $(TEST_JOBS)

unit: $(BUILD)/unit_tests
	$(BUILD)/unit_tests

integration: all
	@$(PYTHON) tests/run_tests.py --build $(BUILD) --only integration --jobs $(TEST_JOBS)

# ASan + UBSan build of the unit tests (separate build directory).
# ASan+UBSan: the unit tests, then shoald itself under the integration files that feed it bad and
# unusual input (a sanitizer report in its log fails the test: tests/lib/harness.py).
# -g1: line tables and function names, all a sanitizer's stack trace prints (17 % less compile
# time than -g).
SAN_OPT := -O1 -g1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all
SAN_INTEGRATION := test_bad_input,test_udp_protocol,test_http,test_access_list,test_daemon,test_ws,test_ws_operations
check-sanitize:
	$(MAKE) BUILD=build-san OPT="$(SAN_OPT)" build-san/unit_tests build-san/shoald build-san/shoalctl build-san/shm_inspect
	ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 $(PYTHON) tests/run_tests.py --build build-san --only unit
	ASAN_OPTIONS=detect_leaks=0 UBSAN_OPTIONS=print_stacktrace=1 $(PYTHON) tests/run_tests.py --build build-san \
	  --only integration --files $(SAN_INTEGRATION)

# libFuzzer (Debian clang) with ASan+UBSan: every parser of outside input and a stateful
# partition target (tests/fuzz/, seeds in tests/fuzz/corpus/). The part of the library the
# targets use is built with clang into build-fuzz; each target runs FUZZ_SECONDS, FUZZ_JOBS at a
# time (tools/run_fuzz.sh).
FUZZ_BUILD   ?= build-fuzz
FUZZ_SECONDS ?= 60
FUZZ_JOBS    ?= 2
FUZZ_OPT     := -O1 -gline-tables-only -fno-omit-frame-pointer -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all
FUZZ_TARGETS := $(patsubst tests/fuzz/%.cpp,%,$(wildcard tests/fuzz/fuzz_*.cpp))
# The library files the fuzz targets link (28 of the library's 84 objects: the rest is not
# compiled for them). A target that starts using another one fails to link with an undefined
# reference: add its .cpp here.
FUZZ_LIB_SRCS := shm/partition.cpp shm/partition_repair.cpp shm/partition_snapshot.cpp shm/partition_ws.cpp shm/snapshot_codec.cpp \
  shm/layout_version.cpp conf/access_list.cpp conf/cidr.cpp conf/config_load.cpp conf/config_schema.cpp \
  conf/config_store.cpp conf/listen_address.cpp conf/topology_map.cpp conf/topology_table.cpp \
  worker/cluster_codec.cpp worker/cluster_join.cpp worker/cluster_transfers.cpp worker/cluster_ws_codec.cpp \
  worker/http_codec.cpp worker/http_request.cpp worker/peer_policy.cpp worker/udp_codec.cpp \
  worker/webtorrent_codec.cpp worker/ws_handshake.cpp worker/ws_session.cpp \
  supervisor/log.cpp supervisor/torrent_file.cpp supervisor/transfer_store.cpp
FUZZ_LIB_OBJS := $(patsubst %.cpp,$(BUILD)/obj/%.o,$(FUZZ_LIB_SRCS)) $(BUILD)/obj/gen/default_conf.o
fuzz:
	$(MAKE) CXX=clang++ BUILD=$(FUZZ_BUILD) OPT="$(FUZZ_OPT)" $(addprefix $(FUZZ_BUILD)/,$(FUZZ_TARGETS))
	@tools/run_fuzz.sh -j $(FUZZ_JOBS) $(FUZZ_BUILD) $(FUZZ_SECONDS) $(FUZZ_TARGETS)

$(BUILD)/libshoal-fuzz.a: $(FUZZ_LIB_OBJS)
	@rm -f $@; ar rcs $@ $^

$(BUILD)/fuzz_%: $(BUILD)/obj/tests/fuzz/fuzz_%.o $(BUILD)/libshoal-fuzz.a
	$(CXX) $(CXXFLAGS) -fsanitize=fuzzer $^ -o $@ $(LDLIBS)

# Benchmarks (not part of `make test`): an optimised build in $(BUILD)/bench, the peers it is
# compared with (Debian opentracker, npm bittorrent-tracker under $(BUILD)/bench-node), then
# tools/bench/bench.py (writes tools/bench/RESULTS.md and README's table). BENCH_QUICK=1: ~2 min.
BENCH_BUILD ?= $(BUILD)/bench
BENCH_OPT   ?= -O3 -g
BENCH_NODE  ?= $(BUILD)/bench-node
bench:
	$(MAKE) BUILD=$(BENCH_BUILD) OPT="$(BENCH_OPT)" $(addprefix $(BENCH_BUILD)/,shoald shoalctl shm_inspect udp_load http_load limit_server topology_bench conn_id_bench ws_load cluster_load)
	@command -v opentracker >/dev/null || { (apt-get update -qq || true) && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq opentracker; }
	@[ -f $(BENCH_NODE)/node_modules/bittorrent-tracker/server.js ] || \
	  npm install --prefix $(BENCH_NODE) --ignore-scripts --no-audit --no-fund bittorrent-tracker
	BENCH_COMMAND="$(if $(BENCH_QUICK),BENCH_QUICK=$(BENCH_QUICK) )make bench" \
	  $(PYTHON) tools/bench/bench.py --build $(BENCH_BUILD) --node-dir $(BENCH_NODE)

run: $(BUILD)/shoald
	$(BUILD)/shoald

lint:
	@! grep -rnE 'interprocess_mutex|managed_shared_memory|allocate\(' worker/ shm/ --include='*.cpp' --include='*.hpp' \
	  || { echo "lint: Boost.Interprocess mutexes/allocator are banned in worker/ and shm/"; exit 1; }

# Man pages: mdoc, checked by lint-man and tests/integration/test_man.py.
lint-man:
	mandoc -T lint -W warning man/*.[58]

# The systemd unit is installed, not enabled; its /usr/local/sbin becomes $(PREFIX)/sbin.
MANDIR  ?= $(PREFIX)/share/man
UNITDIR ?= /lib/systemd/system
install: all
	install -d $(DESTDIR)$(PREFIX)/sbin $(DESTDIR)$(PREFIX)/bin $(DESTDIR)/etc/shoal \
	  $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(UNITDIR)
	install -m 755 $(BUILD)/shoald $(DESTDIR)$(PREFIX)/sbin/shoald
	install -m 755 $(BUILD)/shoalctl $(DESTDIR)$(PREFIX)/bin/shoalctl
	install -m 755 $(BUILD)/shm_inspect $(DESTDIR)$(PREFIX)/bin/shoal-shm-inspect
	install -m 755 $(BUILD)/udp_load $(DESTDIR)$(PREFIX)/bin/shoal-udp-load
	[ -e $(DESTDIR)/etc/shoal/shoal.conf ] || install -m 644 conf/shoal.conf $(DESTDIR)/etc/shoal/shoal.conf
	install -m 644 man/shoal.conf.5 $(DESTDIR)$(MANDIR)/man5/shoal.conf.5
	install -m 644 man/shoald.8 man/shoalctl.8 $(DESTDIR)$(MANDIR)/man8/
	sed 's|/usr/local/sbin/|$(PREFIX)/sbin/|g' conf/shoald.service > $(DESTDIR)$(UNITDIR)/shoald.service
	chmod 644 $(DESTDIR)$(UNITDIR)/shoald.service

clean:
	rm -rf build build-san build-fuzz

-include $(BUILD)/obj/layout-test/layout_version.d $(LIB_OBJS:.o=.d) $(TEST_OBJS:.o=.d) $(BUILD)/obj/supervisor/main.d $(TOOL_SRCS:tools/%.cpp=$(BUILD)/obj/tools/%.d)
