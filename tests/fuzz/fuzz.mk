# fuzz.mk - build the libFuzzer target (clang, ASan+UBSan), run from the
# build directory by `make fuzz-build` (Makefile.am), which passes what the
# build itself uses, so this file keeps no list of its own:
#
#   srcdir    the source tree
#   OUT       output directory (fuzz/)
#   SOURCES   the library's sources ($(lib_libscimg_internal_la_SOURCES))
#             and the plugins linked in ($(FUZZ_PLUGIN_SOURCES))
#   CPPFLAGS_ the library's preprocessor flags
#   CFLAGS_   the library's compiler flags (pkg-config --cflags of every
#             library configure found; -Werror and gcc-only flags removed)
#   LIBS_     the library's link flags ($(lib_libscimg_la_LIBADD): the
#             pkg-config --libs configure found) and $(LIBS)
#
# The result is $(OUT)/fuzz-image: one binary for every format; it reads the
# format from --format=NAME, from its own name (fuzz-NAME, a link made by
# run-fuzz.sh) or from $SCIMG_FUZZ_FORMAT, and `fuzz-image --list-formats`
# prints the formats it can read (the registry).  Objects are rebuilt when a
# source or header changes (-MMD).
FUZZ_CC ?= clang
SAN = -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
BASE = -g -O1 $(filter-out -Werror -fsanitize=% -fno-sanitize-recover=% -fno-omit-frame-pointer,$(CFLAGS_)) \
	$(CPPFLAGS_) -DSCIMG_NO_PLUGIN_LOADING -DFUZZ_STATIC_PLUGINS -Wno-unknown-warning-option
OBJS = $(patsubst %.c,$(OUT)/%.o,$(filter %.c,$(SOURCES)))

$(OUT)/fuzz-image: $(srcdir)/tests/fuzz/fuzz-image.c $(OBJS)
	$(FUZZ_CC) $(BASE) $(SAN) -fsanitize=fuzzer $^ $(LIBS_) -pthread -o $@.tmp && mv $@.tmp $@

$(OUT)/%.o: $(srcdir)/%.c
	@mkdir -p $(@D)
	$(FUZZ_CC) $(BASE) $(SAN) -fsanitize=fuzzer-no-link -MMD -c $< -o $@

-include $(OBJS:.o=.d)
