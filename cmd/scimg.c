/* scimg.c - entry point: dispatch to subcommands. */
#include <stdlib.h>
#include <string.h>

#include "cmd.h"

const char *prog = "scimg";

static const struct {
	const char *name;
	int (*fn)(int, char **);
	const char *summary;
} cmds[] = {
	{ "info", cmd_info, "show what an image is: format, sizes, format details" },
	{ "convert", cmd_convert, "convert an image to another format" },
	{ "compare", cmd_compare, "compare the guest-visible content of two images" },
	{ "plugins", cmd_plugins, "list the plugins found and what they add" },
	{ "check", cmd_check, "check an image: container, digests, signature, guest compliance" },
	{ "inject-drivers", cmd_inject_drivers, "make a Linux guest boot on every bus and as a Xen PV domU" },
	{ "boot-test", cmd_boot_test, "boot an image under QEMU on each bus and firmware: proof of boot" },
	{ "create", cmd_create, "create an empty image, or an overlay of a backing file" },
	{ "measure", cmd_measure, "how much space an image converted to a format needs" },
	{ "map", cmd_map, "show where the guest bytes of an image come from" },
	{ "resize", cmd_resize, "change the virtual size of an image in place" },
	{ "rebase", cmd_rebase, "change the backing file an image names (-u)" },
};

static void usage(FILE *f)
{
	size_t i;

	fprintf(f, "Usage: %s COMMAND [OPTIONS] ...\n\n"
		   "Read, convert and check virtual machine disk images.\n\nCommands:\n", prog);
	for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		fprintf(f, "  %-16s %s\n", cmds[i].name, cmds[i].summary);
	fprintf(f, "\nFormats:");
	for (i = 0; i < scimg_format_count(); i++) {
		int r = 0, w = 0;
		scimg_format_caps(scimg_format_name(i), &r, &w);
		fprintf(f, " %s(%s%s)", scimg_format_name(i), r ? "r" : "", w ? "w" : "");
	}
	fprintf(f, "\n\n'%s COMMAND --help' describes a command; man scimg-COMMAND has the details.\n"
		   "Exit status: 0 success, 1 images differ (compare) or not compliant (check),\n2 error.\n", prog);
}

int main(int argc, char **argv)
{
	size_t i;

	if (argc < 2) {
		usage(stderr);
		return EXIT_ERROR;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		usage(stdout);
		return EXIT_OK;
	}
	if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0) {
		print_version();
		return EXIT_OK;
	}
	for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (strcmp(argv[1], cmds[i].name) == 0)
			return cmds[i].fn(argc - 1, argv + 1);
	fprintf(stderr, "%s: unknown command '%s'\n", prog, argv[1]);
	usage(stderr);
	return EXIT_ERROR;
}
