# scripts/sanitize.mk — pgwarden and its unit tests built with clang and a
# sanitizer, outside autotools, into a directory of their own.
#
# Why not configure: CI builds in the source tree, and an automake tree that
# is configured in place cannot also be configured out of tree. Compiling
# the same sources with one standalone rule set sidesteps that and keeps the
# sanitizer build from ever touching the product build. scripts/sanitize.sh
# drives this file:
#     make -f scripts/sanitize.mk SRC=$PWD O=/tmp/pgwarden-asan SAN=asan -j2
# SAN=asan: AddressSanitizer + LeakSanitizer + UndefinedBehaviorSanitizer.
# ASan reports abort the process; UBSan reports are logged and the process
# goes on (clang's default recovery), so one report does not turn the rest
# of the suite into a cascade of refused connections -- sanitize.sh fails
# the stage on any report file all the same, and only recoverable checks
# can be suppressed (scripts/ubsan.supp). SAN=tsan: ThreadSanitizer.
# Header dependencies are tracked with -MMD.

SRC ?= $(CURDIR)
O ?= /tmp/pgwarden-asan
SAN ?= asan
CC = clang

# A build directory another checkout left behind: its objects and dependency
# files name that checkout's sources (one deleted there stops make with "No
# rule to make target"). Start it over; $(O)/source says whose it is.
ifneq ($(shell cat $(O)/source 2>/dev/null),$(SRC))
$(shell rm -rf $(O)/obj $(O)/pgwarden $(O)/tests; mkdir -p $(O); printf '%s\n' '$(SRC)' >$(O)/source)
endif

PKGS = libevent_core libevent_extra libevent_openssl libevent_pthreads openssl libcurl \
	jansson libpq hiredis libprotobuf-c
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS))
PKG_LIBS := $(shell pkg-config --libs $(PKGS)) -lpg_query -lstemmer -lm
CHECK_CFLAGS := $(shell pkg-config --cflags check)
CHECK_LIBS := $(shell pkg-config --libs check)

ifeq ($(SAN),tsan)
SANFLAGS = -fsanitize=thread
else
SANFLAGS = -fsanitize=address,undefined
endif
CFLAGS = -std=gnu11 -g -O1 -fno-omit-frame-pointer -pthread -Wall -Wno-unused-parameter \
	-Wno-missing-field-initializers $(SANFLAGS) $(PKG_CFLAGS) -I$(SRC)/src \
	-DSYSCONFDIR='"/etc"' -DPACKAGE_VERSION='"0.1.0"' -DTEST_SRCDIR='"$(SRC)"'

LIB_SRCS := $(filter-out $(SRC)/src/main.c,$(wildcard $(SRC)/src/*.c))
LIB_OBJS := $(patsubst $(SRC)/src/%.c,$(O)/obj/%.o,$(LIB_SRCS))
UNIT := $(patsubst $(SRC)/tests/unit/%.c,%,$(wildcard $(SRC)/tests/unit/test_*.c))
UNIT_BINS := $(addprefix $(O)/tests/unit/,$(UNIT))
# Helpers the unit tests share (tests/unit/*.c that are not test_*.c, e.g.
# redis_server.c): linked into every unit test.
UNIT_HELPERS := $(filter-out $(SRC)/tests/unit/test_%.c,$(wildcard $(SRC)/tests/unit/*.c))
HELPER_OBJS := $(patsubst $(SRC)/tests/unit/%.c,$(O)/obj/unit/%.o,$(UNIT_HELPERS))
# Helper programs the integration suite runs from the build directory
# (tests/integration/*.c, e.g. changes_follow).
TOOLS := $(patsubst $(SRC)/tests/integration/%.c,%,$(wildcard $(SRC)/tests/integration/*.c))
TOOL_BINS := $(addprefix $(O)/tests/integration/,$(TOOLS))

all: $(O)/pgwarden $(UNIT_BINS) $(TOOL_BINS)

$(O)/obj/%.o: $(SRC)/src/%.c $(SRC)/scripts/sanitize.mk
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(O)/obj/unit/%.o: $(SRC)/tests/unit/%.c $(SRC)/scripts/sanitize.mk
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(CHECK_CFLAGS) -MMD -MP -c $< -o $@

$(O)/obj/tools/%.o: $(SRC)/tests/integration/%.c $(SRC)/scripts/sanitize.mk
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(O)/tests/integration/%: $(O)/obj/tools/%.o $(LIB_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $^ $(PKG_LIBS) -o $@

$(O)/pgwarden: $(O)/obj/main.o $(LIB_OBJS)
	$(CC) $(CFLAGS) $^ $(PKG_LIBS) -o $@

$(O)/tests/unit/%: $(O)/obj/unit/%.o $(HELPER_OBJS) $(LIB_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $^ $(CHECK_LIBS) $(PKG_LIBS) -o $@

-include $(O)/obj/*.d $(O)/obj/unit/*.d $(O)/obj/tools/*.d

.PHONY: all
.SECONDARY:
