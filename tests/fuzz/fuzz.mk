# tests/fuzz/fuzz.mk — libFuzzer targets, built with clang outside autotools.
#
# Not part of the automake build on purpose: the fuzz build needs clang with
# -fsanitize=fuzzer, which the product build must not depend on. Every
# object of libpgw (src/*.c but main.c) is compiled here again with
# -fsanitize=fuzzer-no-link,address,undefined, so the targets exercise
# exactly the code pgwarden runs. scripts/fuzz.sh drives this file:
#     make -f tests/fuzz/fuzz.mk O=/tmp/pgwarden-fuzz SRC=$PWD -j2
# Header dependencies are tracked with -MMD, so re-running only rebuilds what
# changed.

SRC ?= $(CURDIR)
O ?= /tmp/pgwarden-fuzz
CC = clang

# A build directory another checkout left behind: its objects and dependency
# files name that checkout's sources (one deleted there stops make with "No
# rule to make target"). Start it over; $(O)/source says whose it is.
ifneq ($(shell cat $(O)/source 2>/dev/null),$(SRC))
$(shell rm -rf $(O)/obj $(O)/bin; mkdir -p $(O); printf '%s\n' '$(SRC)' >$(O)/source)
endif

PKGS = libevent_core libevent_extra libevent_openssl libevent_pthreads openssl libcurl \
	jansson libpq hiredis libprotobuf-c
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS))
PKG_LIBS := $(shell pkg-config --libs $(PKGS)) -lpg_query -lstemmer -lm

SAN = -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
CFLAGS = -std=gnu11 -g -O1 -pthread -Wall -Werror=int-conversion -Wno-unused-parameter \
	-Wno-missing-field-initializers $(SAN) $(PKG_CFLAGS) -I$(SRC)/src \
	-DSYSCONFDIR='"/etc"' -DPACKAGE_VERSION='"fuzz"'

LIB_SRCS := $(filter-out $(SRC)/src/main.c,$(wildcard $(SRC)/src/*.c))
LIB_OBJS := $(patsubst $(SRC)/src/%.c,$(O)/obj/%.o,$(LIB_SRCS))
TARGETS := $(patsubst $(SRC)/tests/fuzz/%.c,%,$(wildcard $(SRC)/tests/fuzz/fuzz_*.c))
BINS := $(addprefix $(O)/bin/,$(TARGETS))

all: $(BINS)

$(O)/obj/%.o: $(SRC)/src/%.c $(SRC)/tests/fuzz/fuzz.mk
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -fsanitize=fuzzer-no-link -MMD -MP -c $< -o $@

$(O)/obj/fuzz/%.o: $(SRC)/tests/fuzz/%.c $(SRC)/tests/fuzz/fuzz.mk
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -fsanitize=fuzzer-no-link -MMD -MP -c $< -o $@

$(O)/bin/%: $(O)/obj/fuzz/%.o $(LIB_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -fsanitize=fuzzer $^ $(PKG_LIBS) -o $@

-include $(LIB_OBJS:.o=.d) $(patsubst %,$(O)/obj/fuzz/%.d,$(TARGETS))

.PHONY: all
.SECONDARY:
