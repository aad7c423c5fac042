# stages.mk - the stages of tests/run-tests.sh as one flat make job graph,
# run from the top of the tree (both build trees configured) with
# `make -k -jN -f tests/stages.mk STAGES="plain boot asan"`:
#
#   build-plain  the -Werror build (configured by run-tests.sh)
#   build-asan   the ASan+UBSan build
#   plain        make check's tests in build-plain (with the guest tests)
#   boot         make check-boot's tests in build-plain (real boots)
#   asan         make check's tests in build-asan, guest tests skipped
#
# Every test of every stage is one job here (automake's harness runs one
# test when asked for its .log), so the N job slots go to whichever test is
# next and ready, whatever its stage: no stage waits for another's long last
# test.  (One sub-make per stage would not do: each would hold a slot for
# its whole run and run its own tests one at a time.)  The jobs are started
# in this order: the tests that need the fixture guests and the longest
# chains first, then the rest slowest first (as Makefile.am lists them).
# Last, each stage's usual `make check` (or check-boot) with RECHECK_LOGS
# empty reruns nothing: it prints the stage's summary, writes its suite log
# and fails when a test failed.
SHELL = /bin/bash
.SHELLFLAGS = -o pipefail -c
STAGES = plain boot asan
# (the layout flavours of tests/boot/test-layouts.sh are not built here:
# make check-layouts, not in CI)
GUESTS = vmware dracut ami

# started first, in this order: the longest chains, the real boots and the
# libguestfs guest tests.  They need the fixture guests and the blanket: a
# test that finds one not built yet waits for the builder's lock (the build
# started in the background at the beginning) or builds it.  A make
# prerequisite on the fixtures did not do: in a measured run, make started
# the jobs waiting on it only after every job listed after them.
FIRST = boot/tests/boot/test-dracut.sh plain/tests/cli/test-sci-guest.sh \
	boot/tests/boot/test-vmware.sh plain/tests/cli/test-inject-drivers.sh \
	boot/tests/boot/test-ami.sh plain/tests/cli/test-kvm-fallback.sh

list = $(shell MAKEFLAGS= $(MAKE) -s --no-print-directory -C $(1) $(2) 2>/dev/null)
tests_plain := $(if $(filter plain,$(STAGES)),$(call list,build-plain,list-tests))
tests_boot := $(if $(filter boot,$(STAGES)),$(call list,build-plain,list-boot-tests))
tests_asan := $(if $(filter asan,$(STAGES)),$(call list,build-asan,list-tests))
dir_plain = build-plain
dir_boot = build-plain
dir_asan = build-asan
env_plain = ASAN_OPTIONS=detect_leaks=1
env_boot =
env_asan = ASAN_OPTIONS=detect_leaks=1 SCIMG_SKIP_GUEST_TESTS=1
args_boot = SCIMG_BOOT_LOGS='$(CURDIR)/build-plain/tests/boot/logs'
summary_plain = check
summary_boot = check-boot
summary_asan = check

jobs_of = $(addprefix $(1)/,$(tests_$(1)))
ALL_JOBS := $(foreach s,$(STAGES),$(call jobs_of,$(s)))
ORDERED := $(filter $(ALL_JOBS),$(FIRST)) $(filter-out $(FIRST),$(ALL_JOBS))

.PHONY: all fixtures build-plain build-asan $(ALL_JOBS) $(addprefix summary-,$(STAGES))
# make starts the prerequisites of a goal in the order they are listed,
# passing over a job whose own prerequisites are not ready yet
all: $(ORDERED) $(addprefix summary-,$(STAGES))

# the check programs too (an empty test list), so that no job builds
# anything in a tree another job runs in.  (Explicit rules: make looks for
# no pattern rule for a .PHONY target.)
BUILD = $(MAKE) -C $(DIR) all >$(DIR)/make.out 2>&1 && \
	$(MAKE) -C $(DIR) check TESTS= >>$(DIR)/make.out 2>&1 && touch $(DIR)/.built || \
	{ echo "$(DIR): build failed"; tail -30 $(DIR)/make.out; exit 1; }
build-plain: DIR = build-plain
build-plain:
	+@$(BUILD)
build-asan: DIR = build-asan
build-asan:
	+@$(BUILD)

# The Debian guests and the blanket of the guest and boot tests (each
# built once and cached under /var/tmp; a test finds it there or builds it
# itself): run-tests.sh starts this target in the background, outside the
# job slots, while the code compiles (the builds are mostly downloading and
# unpacking).  A failure is only reported: the tests that need what is
# missing say so themselves.
fixtures:
	@mkdir -p build-plain; t0=$$(date +%s); \
	for f in $(GUESTS); do \
	  bash tests/fixtures/build-guest.sh $$f >/dev/null 2>build-plain/fixture-$$f.log & \
	done; \
	bash tests/fixtures/build-blanket.sh >/dev/null 2>build-plain/fixture-blanket.log & \
	wait; \
	for f in $(GUESTS) blanket; do \
	  [ -s build-plain/fixture-$$f.log ] || continue; \
	  echo "[fixtures] $$f: $$(tail -n 1 build-plain/fixture-$$f.log)"; \
	done; \
	echo "[fixtures] ready in $$(( $$(date +%s) - t0 ))s"

# job STAGE/TEST: run one test of a stage (its result line, prefixed); a
# failed test shows in the stage's summary, not here
define job_rule
$(1)/$(2): $(dir_$(1))
	+@$(env_$(1)) $$(MAKE) -s --no-print-directory -C $(dir_$(1)) $(basename $(2)).log $(args_$(1)) 2>&1 | \
	  sed -u 's/^/[$(1)] /'; true
endef
$(foreach s,$(STAGES),$(foreach t,$(tests_$(s)),$(eval $(call job_rule,$(s),$(t)))))

# summary-STAGE: after all its jobs, the stage's own make check (nothing is
# run again)
define summary_rule
summary-$(1): $(call jobs_of,$(1))
	+@$(env_$(1)) $$(MAKE) -s --no-print-directory -C $(dir_$(1)) $(summary_$(1)) RECHECK_LOGS= \
	  $(args_$(1)) 2>&1 | { grep -v '^\(PASS\|SKIP\|XFAIL\): ' || true; } | sed -u 's/^/[$(1)] /'
endef
$(foreach s,$(STAGES),$(eval $(call summary_rule,$(s))))
