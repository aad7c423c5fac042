/* boot-test.c - scimg boot-test: boot an image under QEMU on each bus and
 * firmware and tell which boots worked. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"

static void help(void)
{
	printf("Usage: %s boot-test [--bus=LIST] [--firmware=LIST] [--xen=LIST]\n"
	       "                       [--blanket=FILE] [--blanket-firmware=LIST]\n"
	       "                       [--expect=REGEX]\n"
	       "                       [--timeout=S] [--memory=MIB] [--jobs=N] [-f FMT]\n"
	       "                       [--output=human|json] [--no-backing] IMAGE\n\n"
	       "Boot IMAGE under qemu-system-x86_64 on each bus and firmware asked for and\n"
	       "watch the guest's serial console (ttyS0) for proof of boot: a login prompt,\n"
	       "systemd reaching the multi-user or graphical target, cloud-init's final\n"
	       "message, or a line matching --expect.  A boot ends early when the console\n"
	       "shows a failure: the initramfs giving up on the root device, emergency\n"
	       "mode, a kernel panic, systemd crashing, no bootable device, the UEFI shell.\n"
	       "IMAGE is never written (QEMU writes to a temporary overlay); a format QEMU\n"
	       "cannot read is converted to a temporary qcow2 first.  Boots run in\n"
	       "parallel, as many as cores and free memory allow; KVM when it works, TCG\n"
	       "otherwise.\n\n"
	       "  -b, --bus=LIST         buses, comma separated: ide, sata, virtio-blk,\n"
	       "                         virtio-scsi, nvme, or all (default virtio-blk)\n"
	       "      --firmware=LIST    bios (SeaBIOS), uefi (OVMF), or both (default bios)\n"
	       "  -e, --expect=REGEX     also count a console line matching this POSIX\n"
	       "                         extended regular expression as success\n"
	       "  -t, --timeout=S        seconds per boot (default 300 with TCG, 120 with KVM;\n"
	       "                         a Xen boot: 900, or S + 300 for Xen and dom0)\n"
	       "  -m, --memory=MIB       guest RAM in MiB (default 512)\n"
	       "  -j, --jobs=N           boots at once (default: cores and free RAM allow)\n"
	       "  -f, --format=FMT       read IMAGE as FMT instead of probing\n"
	       "      --xen=LIST         also boot IMAGE as a Xen PV domU inside the blanket\n"
	       "                         with these loaders: pygrub, pvgrub2, or all (those\n"
	       "                         two); direct (opt-in, not in CI's tests: no loader,\n"
	       "                         xl gets the guest's default kernel, initramfs and\n"
	       "                         command line, read from IMAGE's grub.cfg) only\n"
	       "                         when named; sci (IMAGE a Supercloud image\n"
	       "                         package: the blanket starts it as its own xl.cfg\n"
	       "                         says, loader, memory and vcpus) only when named;\n"
	       "                         only --xen: no HVM boot unless\n"
	       "                         --bus/--firmware asks\n"
	       "      --blanket=FILE     the blanket for --xen (default: the cached build of\n"
	       "                         `scimg blanket create`, see scimg blanket path)\n"
	       "      --blanket-firmware=LIST\n"
	       "                         start the blanket with bios, uefi (OVMF) or both\n"
	       "                         (default bios): each --xen boot runs once per\n"
	       "                         firmware, as on providers that start machines\n"
	       "                         with one or the other\n"
	       "      --output=FMT       'human' (default) or 'json' (on stdout)\n"
	       "      --no-backing       do not open files the image refers to\n"
	       "  -h, --help             show this help\n"
	       "  -V, --version          show the version\n\n"
	       "Needs qemu-system-x86_64 (Debian package qemu-system-x86) and, for uefi,\n"
	       "/usr/share/OVMF (package ovmf).  A Xen boot runs the blanket (Xen 4.17 and\n"
	       "a dom0) under TCG with IMAGE as its second disk; its dom0 starts IMAGE\n"
	       "with the loader and relays the domU's console.  direct first reads the\n"
	       "kernel through a read-only libguestfs appliance and gives it to the\n"
	       "blanket on a third disk.\n\n"
	       "Exit status: 0 every boot worked, 1 some did not (each is named with its\n"
	       "reason), 2 could not test.  See scimg-boot-test(1).\n", prog);
}

static void notice(void *opaque, const char *msg)
{
	(void)opaque;
	fprintf(stderr, "%s boot-test: %s\n", prog, msg);
}

static double jdbl(json_object *o, const char *k)
{
	json_object *v;
	return json_object_object_get_ex(o, k, &v) ? json_object_get_double(v) : 0;
}

static void print_boot(json_object *b)
{
	const char *res = jstr(b, "result");

	/* a Xen boot: "xen-pv" and its loader, and the blanket's firmware
	 * when it is not BIOS */
	const char *bus = strcmp(jstr(b, "blanket-firmware"), "uefi") ? jstr(b, "bus") : "xen-pv/uefi";

	printf("%-11s %-4s %-7s %6.1f s  %s\n", bus, jstr(b, "firmware"),
	       strcmp(res, "ok") ? (strcmp(res, "timeout") ? "FAIL" : "TIMEOUT") : "ok",
	       jdbl(b, "seconds"), jstr(b, "reason"));
	fflush(stdout);
}

/* The last console lines of a boot that did not work. */
static void print_console(json_object *b)
{
	json_object *c;

	if (!strcmp(jstr(b, "result"), "ok") || !json_object_object_get_ex(b, "console", &c) ||
	    !json_object_array_length(c))
		return;
	printf("\n%s %s: last console lines:\n", jstr(b, "bus"), jstr(b, "firmware"));
	for (size_t i = 0; i < json_object_array_length(c); i++)
		printf("  | %s\n", json_object_get_string(json_object_array_get_idx(c, i)));
}

static void on_boot_done(void *opaque, json_object *b)
{
	(void)opaque;
	print_boot(b);
}

/* --OPT=LIST of the KINDS of boot names (scimg_boot_parse_list) */
static int parse_list(const char *sub, const char *opt, const char *s, unsigned kinds,
		      unsigned *buses, unsigned *firmware, unsigned *xen)
{
	char err[400];

	if (scimg_boot_parse_list(s, ",", kinds, ~0u, buses, firmware, xen, err, sizeof(err)) < 0)
		return usage_error(sub, "--%s: %s", opt, err);
	return 0;
}

static int parse_int(const char *s, int min, int max, int *out, const char *opt)
{
	char *e;
	long v;

	errno = 0;
	v = strtol(s, &e, 10);
	if (errno || e == s || *e || v < min || v > max)
		return usage_error("boot-test", "--%s must be a whole number from %d to %d, not '%s'",
				   opt, min, max, s);
	*out = (int)v;
	return 0;
}

int parse_boot_list(const char *sub, const char *opt, const char *s, unsigned *buses,
		    unsigned *firmware, unsigned *xen)
{
	return parse_list(sub, opt, s,
			  SCIMG_BOOT_LIST_BUS | SCIMG_BOOT_LIST_FIRMWARE | SCIMG_BOOT_LIST_XEN, buses,
			  firmware, xen);
}

int cmd_boot_test(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "bus", required_argument, NULL, 'b' },
		{ "firmware", required_argument, NULL, 'F' },
		{ "expect", required_argument, NULL, 'e' },
		{ "timeout", required_argument, NULL, 't' },
		{ "memory", required_argument, NULL, 'm' },
		{ "jobs", required_argument, NULL, 'j' },
		{ "format", required_argument, NULL, 'f' },
		{ "xen", required_argument, NULL, 'X' },
		{ "blanket", required_argument, NULL, 'L' },
		{ "blanket-firmware", required_argument, NULL, 'U' },
		{ "output", required_argument, NULL, 'o' },
		{ "no-backing", no_argument, NULL, 'B' },
		LONG_OPTIONS_END,
	};
	struct scimg_boot_opts o;
	struct scimg_ctx *ctx;
	json_object *report = NULL, *a;
	int c, rc, json = 0, nobacking = 0;

	memset(&o, 0, sizeof(o));
	o.size = sizeof(o);
	while ((c = getopt_long(argc, argv, ":b:e:t:m:j:f:hV", longopts, NULL)) != -1) {
		switch (c) {
		case 'b':
			if (parse_list("boot-test", "bus", optarg, SCIMG_BOOT_LIST_BUS, &o.buses, NULL, NULL))
				return EXIT_ERROR;
			break;
		case 'F':
			if (parse_list("boot-test", "firmware", optarg, SCIMG_BOOT_LIST_FIRMWARE, NULL,
				       &o.firmware, NULL))
				return EXIT_ERROR;
			break;
		case 'e': o.expect = optarg; break;
		case 't':
			if (parse_int(optarg, 1, 86400, &o.timeout, "timeout"))
				return EXIT_ERROR;
			break;
		case 'm':
			if (parse_int(optarg, 64, 1024 * 1024, &o.memory_mib, "memory"))
				return EXIT_ERROR;
			break;
		case 'j':
			if (parse_int(optarg, 1, 256, &o.jobs, "jobs"))
				return EXIT_ERROR;
			break;
		case 'f': o.format = optarg; break;
		case 'X':
			if (parse_list("boot-test", "xen", optarg, SCIMG_BOOT_LIST_XEN, NULL, NULL, &o.xen))
				return EXIT_ERROR;
			break;
		case 'L': o.blanket = optarg; break;
		case 'U':
			if (parse_list("boot-test", "blanket-firmware", optarg, SCIMG_BOOT_LIST_FIRMWARE,
				       NULL, &o.blanket_firmware, NULL))
				return EXIT_ERROR;
			break;
		case 'o':
			if ((json = output_is_json(optarg)) < 0)
				return usage_error("boot-test", "--output must be 'human' or 'json', not '%s'", optarg);
			break;
		case 'B': nobacking = 1; break;
		case 'h': help(); return EXIT_OK;
		case 'V': print_version(); return EXIT_OK;
		default: return bad_option("boot-test", c, argv);
		}
	}
	if (optind != argc - 1)
		return usage_error("boot-test", "expected exactly one IMAGE");
	o.path = argv[optind];
	o.notice = notice;
	if (!json)
		o.boot_done = on_boot_done;
	ctx = cmd_ctx_new_cancel(nobacking);
	rc = scimg_boot_test(ctx, &o, &report);
	if (rc < 0) {
		die_ctx("boot-test", ctx);
		scimg_ctx_free(ctx);
		return EXIT_ERROR;
	}
	if (json) {
		printf("%s\n", json_object_to_json_string_ext(report, JSON_C_TO_STRING_PRETTY |
								JSON_C_TO_STRING_SPACED |
								JSON_C_TO_STRING_NOSLASHESCAPE));
	} else {
		size_t n = 0, ok = 0;

		if (json_object_object_get_ex(report, "boots", &a)) {
			n = json_object_array_length(a);
			for (size_t i = 0; i < n; i++) {
				json_object *b = json_object_array_get_idx(a, i);
				ok += !strcmp(jstr(b, "result"), "ok");
				print_console(b);
			}
		}
		printf("\nimage: %s (%s; %s)\naccel: %s\nresult: %zu of %zu boot%s worked\n",
		       jstr(report, "image"), jstr(report, "format"), jstr(report, "content"),
		       jstr(report, "accel"), ok, n, n == 1 ? "" : "s");
	}
	json_object_put(report);
	scimg_ctx_free(ctx);
	return rc == 0 ? EXIT_OK : EXIT_DIFFERENT;
}
