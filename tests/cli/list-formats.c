/* list-formats - print the formats of the registry as the scimg command
 * sees them (the built-in ones and those of the plugins found through
 * $SCIMG_PLUGIN_PATH), one name a line: every format, or only those that
 * can be read (`read`) or written (`write`).  The generic tests
 * (tests/cli/test-faults.sh, test-bounds.sh, test-input-unchanged.sh,
 * tests/fuzz/test-fuzz-*.sh) iterate this list, so a new format is tested
 * without editing a second list. */
#include <stdio.h>
#include <string.h>

#include "scimg.h"

int main(int argc, char **argv)
{
	const char *want = argc > 1 ? argv[1] : "all";
	size_t i;

	if (argc > 2 || (strcmp(want, "all") && strcmp(want, "read") && strcmp(want, "write"))) {
		fprintf(stderr, "usage: list-formats [all|read|write]\n");
		return 2;
	}
	for (i = 0; i < scimg_format_count(); i++) {
		const char *name = scimg_format_name(i);
		int r = 0, w = 0;

		if (scimg_format_caps(name, &r, &w) < 0)
			return 2;
		if (!strcmp(want, "all") || (!strcmp(want, "read") && r) || (!strcmp(want, "write") && w))
			printf("%s\n", name);
	}
	return 0;
}
