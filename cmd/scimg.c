/* scimg.c - entry point: dispatch to subcommands. */
#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
	{ "boot-test", cmd_boot_test, "boot an image under QEMU on each bus and firmware, and under Xen: proof of boot" },
	{ "blanket", cmd_blanket, "build the blanket: the nested Xen layer Supercloud images boot on" },
	{ "create", cmd_create, "create an empty image, or an overlay of a backing file" },
	{ "measure", cmd_measure, "how much space an image converted to a format needs" },
	{ "map", cmd_map, "show where the guest bytes of an image come from" },
	{ "resize", cmd_resize, "change the virtual size of an image in place" },
	{ "rebase", cmd_rebase, "change the backing file of a qcow2 image (safe, or -u)" },
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
	fprintf(f, "\n\n'%s COMMAND --help' (or '%s help COMMAND') describes a command;\nman scimg-COMMAND has the details.\n"
		   "Exit status: 0 success, 1 images differ (compare) or not compliant (check),\n2 error.\n", prog, prog);
}

/* Run from the build tree (cmd/scimg, libtool's wrapper running
 * cmd/.libs/scimg or lt-scimg), scimg would only find installed plugins, or
 * none: when $SCIMG_PLUGIN_PATH is not set and this program's own file lies
 * in the build tree's cmd/ or cmd/.libs/, point it at the build tree's
 * plugins.  An installed scimg is elsewhere and never looks there. */
static void find_build_tree_plugins(void)
{
#if defined(SCIMG_BUILDDIR) && defined(SCIMG_BUILD_PLUGIN_PATH)
	static const char *const dirs[] = { SCIMG_BUILDDIR "/cmd", SCIMG_BUILDDIR "/cmd/.libs" };
	char exe[PATH_MAX], dir[PATH_MAX];
	ssize_t n;
	char *slash;
	size_t i;

	if (getenv("SCIMG_PLUGIN_PATH"))
		return;
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0)
		return;
	exe[n] = '\0';
	slash = strrchr(exe, '/');
	if (!slash || slash == exe)
		return;
	*slash = '\0';
	for (i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++)
		if (realpath(dirs[i], dir) && strcmp(dir, exe) == 0) {
			setenv("SCIMG_PLUGIN_PATH", SCIMG_BUILD_PLUGIN_PATH, 1);
			return;
		}
#endif
}

int main(int argc, char **argv)
{
	size_t i;

	/* Subcommands report a refused option themselves, once (bad_option). */
	opterr = 0;
	find_build_tree_plugins();
	if (argc < 2) {
		usage(stderr);
		return EXIT_ERROR;
	}
	if (strcmp(argv[1], "help") == 0 && argc > 2) {
		/* "scimg help COMMAND" is "scimg COMMAND --help" */
		static char help_opt[] = "--help";
		char *hargv[] = { argv[2], help_opt, NULL };

		for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
			if (strcmp(argv[2], cmds[i].name) == 0)
				return cmds[i].fn(2, hargv);
		fprintf(stderr, "%s help: unknown command '%s'\n", prog, argv[2]);
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
