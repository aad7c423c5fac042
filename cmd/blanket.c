/* blanket.c - scimg blanket: build the blanket, the nested Xen layer a
 * Supercloud image boots on at every provider (lib/boot/blanket.c). */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"

static void help(void)
{
	printf("Usage: %s blanket create [-O qcow2|raw] [-o KEY=VAL,...] [--cache=DIR] [-q] OUT\n"
	       "       %s blanket path [-o KEY=VAL,...] [--cache=DIR] [--no-build]\n\n"
	       "create writes the blanket to OUT: a GPT disk that boots with BIOS and UEFI\n"
	       "into Xen 4.17 and a small Debian dom0 (its initramfs holds the virtio,\n"
	       "NVMe, SCSI, AHCI, Hyper-V and Xen block drivers, so it boots as an HVM\n"
	       "guest at any provider).  At boot, its scimg-blanket service starts every\n"
	       "other disk of the machine as a Xen PV domU (pygrub, then pvgrub2) and\n"
	       "prints each one's fate on the serial console.  Upload it once per\n"
	       "provider; attach Supercloud images' disks (raw) to it.\n\n"
	       "The first build needs root (or user namespaces), mmdebstrap and Debian's\n"
	       "archive, and takes minutes; it is cached by everything that makes it, and\n"
	       "later runs are offline.  OUT appears only when complete.\n\n"
	       "path prints the cached build's file name (building it first unless\n"
	       "--no-build); scimg boot-test --xen uses that build by default.\n\n"
	       "  -O, --format=FMT     qcow2 (default) or raw\n"
	       "  -o KEY=VAL,...       suite=SUITE (bookworm), mirror=URL (deb.debian.org),\n"
	       "                       packages=P1,,P2 (more dom0 packages; commas doubled\n"
	       "                       inside -o), size=SIZE (disk size, default 3G)\n"
	       "      --cache=DIR      build cache (default $SCIMG_BLANKET_CACHE, else\n"
	       "                       /var/tmp/scimg-blanket-cache)\n"
	       "      --no-build       path: fail when nothing is cached\n"
	       "  -q, --quiet          no progress lines\n"
	       "  -h, --help           show this help\n"
	       "  -V, --version        show the version\n\n"
	       "Exit status: 0 done, 2 could not do it.  See scimg-blanket(1).\n", prog, prog);
}

static void notice(void *opaque, const char *msg)
{
	(void)opaque;
	fprintf(stderr, "%s blanket: %s\n", prog, msg);
}

static int parse_o(struct scimg_blanket_opts *bo, char *s)
{
	char *save = NULL, *t, *buf = malloc(strlen(s) + 1), *w = buf;
	int r = 0;

	if (!buf)
		return usage_error("blanket", "out of memory");
	/* split on single commas; ",," is a comma inside a value */
	for (char *p = s;; p++) {
		if (*p == ',' && p[1] == ',') {
			*w++ = '\x1f';
			p++;
			continue;
		}
		*w++ = *p;
		if (!*p)
			break;
	}
	for (t = strtok_r(buf, ",", &save); t && !r; t = strtok_r(NULL, ",", &save)) {
		char *v = strchr(t, '=');
		char **slot = NULL;

		for (char *q = t; *q; q++)
			if (*q == '\x1f')
				*q = ',';
		if (!v) {
			r = usage_error("blanket", "-o: '%s' is not KEY=VALUE", t);
			break;
		}
		*v++ = '\0';
		if (!strcmp(t, "suite"))
			slot = (char **)&bo->suite;
		else if (!strcmp(t, "mirror"))
			slot = (char **)&bo->mirror;
		else if (!strcmp(t, "packages"))
			slot = (char **)&bo->extra_packages;
		else if (!strcmp(t, "size")) {
			if (parse_size_arg(v, &bo->disk_size) < 0)
				r = usage_error("blanket", "-o size: '%s' is not a size", v);
		} else {
			r = usage_error("blanket", "-o: unknown key '%s' (known: suite, mirror, "
					"packages, size)", t);
		}
		if (slot) {
			free(*slot);
			if (!(*slot = strdup(v)))
				r = usage_error("blanket", "out of memory");
		}
	}
	free(buf);
	return r;
}

static void free_opts(struct scimg_blanket_opts *bo)
{
	free((char *)bo->suite);
	free((char *)bo->mirror);
	free((char *)bo->extra_packages);
	bo->suite = bo->mirror = bo->extra_packages = NULL;
}

int cmd_blanket(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "format", required_argument, NULL, 'O' },
		{ "cache", required_argument, NULL, 'C' },
		{ "no-build", no_argument, NULL, 'N' },
		{ "quiet", no_argument, NULL, 'q' },
		LONG_OPTIONS_END,
	};
	struct scimg_blanket_opts bo;
	struct scimg_ctx *ctx;
	const char *sub, *format = NULL;
	int c, r, quiet = 0;

	memset(&bo, 0, sizeof(bo));
	bo.size = sizeof(bo);
	/* options may come before or after the action (getopt permutes) */
	while ((c = getopt_long(argc, argv, ":O:o:qhV", longopts, NULL)) != -1) {
		switch (c) {
		case 'O':
			if (strcmp(optarg, "qcow2") && strcmp(optarg, "raw")) {
				free_opts(&bo);
				return usage_error("blanket", "-O must be qcow2 or raw, not '%s'", optarg);
			}
			format = optarg;
			break;
		case 'o':
			if (parse_o(&bo, optarg)) {
				free_opts(&bo);
				return EXIT_ERROR;
			}
			break;
		case 'C': bo.cache_dir = optarg; break;
		case 'N': bo.no_build = 1; break;
		case 'q': quiet = 1; break;
		case 'h':
			free_opts(&bo);
			help();
			return EXIT_OK;
		case 'V':
			free_opts(&bo);
			print_version();
			return EXIT_OK;
		default:
			free_opts(&bo);
			return bad_option("blanket", c, argv);
		}
	}
	if (optind >= argc || (strcmp(argv[optind], "create") && strcmp(argv[optind], "path"))) {
		free_opts(&bo);
		return usage_error("blanket", "expected 'create' or 'path' (see %s blanket --help)", prog);
	}
	sub = argv[optind++];
	if (!strcmp(sub, "create") ? optind != argc - 1 : optind != argc) {
		free_opts(&bo);
		return usage_error("blanket", !strcmp(sub, "create") ? "create: expected exactly one OUT"
				   : "path: no operands expected");
	}
	if (!quiet)
		bo.notice = notice;
	ctx = cmd_ctx_new();
	install_cancel_handlers(ctx);
	if (!strcmp(sub, "create")) {
		r = scimg_blanket_create(ctx, &bo, argv[optind], format);
		if (r >= 0 && !quiet)
			fprintf(stderr, "%s blanket: wrote %s\n", prog, argv[optind]);
	} else {
		char *path = NULL;

		r = scimg_blanket_path(ctx, &bo, &path, NULL);
		if (r >= 0)
			printf("%s\n", path);
		free(path);
	}
	if (r < 0)
		die_ctx("blanket", ctx);
	scimg_ctx_free(ctx);
	free_opts(&bo);
	return r < 0 ? EXIT_ERROR : EXIT_OK;
}
