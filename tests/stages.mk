# stages.mk - the stages of tests/run-tests.sh as one make job graph, run
# from the top of the tree with `make -k -jN -f tests/stages.mk`:
#
#   fixtures     the Debian guests and the Xen dom0 (tests/fixtures, cached)
#   build-plain  the -Werror build (configured by run-tests.sh)
#   build-asan   the ASan+UBSan build
#   check-plain  make check in build-plain (with the libguestfs guest tests)
#   check-boot   make check-boot in build-plain (the real-boot matrix)
#   check-asan   make check in build-asan, guest tests skipped
#
# All of them share one make jobserver, so the N job slots go to whatever
# test of whichever stage is ready next: a stage's last long test (a guest
# boot, a corruption loop) no longer leaves a core idle while the next stage
# waits for it.  Each stage's output lines carry its name.  The stages write
# different files: check-boot runs only the boot tests' check-TESTS (no
# build) with its own suite log, next to check-plain's in the same tree.
SHELL = /bin/bash
.SHELLFLAGS = -o pipefail -c
.PHONY: all fixtures build-plain build-asan check-plain check-boot check-asan

# the long stage first: it gets the first free slot
all: check-boot check-plain check-asan

# the check programs too (an empty test list), so that the stages that run
# next in the same tree find nothing to build at the same time.  (Explicit
# rules: make looks for no pattern rule for a .PHONY target.)
BUILD = $(MAKE) -C $(DIR) all >$(DIR)/make.out 2>&1 && \
	$(MAKE) -C $(DIR) check TESTS= >>$(DIR)/make.out 2>&1 || \
	{ echo "$(DIR): build failed"; tail -30 $(DIR)/make.out; exit 1; }
build-plain: DIR = build-plain
build-plain:
	+@$(BUILD)
build-asan: DIR = build-asan
build-asan:
	+@$(BUILD)

# The Debian guests and the Xen dom0 of the guest and boot tests (each
# built once and cached under /var/tmp; a test finds it there or builds it
# itself): mostly downloading and unpacking, so the four are made at once.
# run-tests.sh starts this target in the background, outside the job
# slots, while the code compiles; the one in the job graph then only waits
# for it (lock) and finds it done.  A failure is only reported: the tests
# that need what is missing say so themselves.
GUESTS = vmware dracut ami
fixtures:
	@exec 8>build-plain/.fixtures.lock; flock 8; \
	[ -e build-plain/.fixtures.done ] && exit 0; \
	t0=$$(date +%s); \
	for f in $(GUESTS); do \
	  bash tests/fixtures/build-guest.sh $$f >/dev/null 2>build-plain/fixture-$$f.log & \
	done; \
	bash tests/boot/boot-xen.sh --prepare >/dev/null 2>build-plain/fixture-dom0.log & \
	wait; \
	for f in $(GUESTS) dom0; do \
	  [ -s build-plain/fixture-$$f.log ] || continue; \
	  echo "[fixtures] $$f: $$(tail -n 1 build-plain/fixture-$$f.log)"; \
	done; \
	echo "[fixtures] ready in $$(( $$(date +%s) - t0 ))s"; \
	touch build-plain/.fixtures.done

check-plain: fixtures build-plain
	+@ASAN_OPTIONS=detect_leaks=1 $(MAKE) -C build-plain check 2>&1 | sed -u 's/^/[plain] /'

check-boot: fixtures build-plain
	+@$(MAKE) -C build-plain check-boot 2>&1 | sed -u 's/^/[boot] /'

check-asan: build-asan
	+@ASAN_OPTIONS=detect_leaks=1 SCIMG_SKIP_GUEST_TESTS=1 $(MAKE) -C build-asan check 2>&1 | \
	  sed -u 's/^/[asan] /'
