/* inject-drivers.c - scimg inject-drivers */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cmd.h"

static void help(void)
{
	printf("Usage: %s inject-drivers [--drivers=LIST] [--dry-run] [--output=FMT]\n"
	       "                            [--partition] [-p] [-f FMT] IMAGE\n"
	       "       %s inject-drivers [OPTIONS] -O FMT IMAGE OUT\n\n"
	       "Make the Linux guest in IMAGE boot on IDE, SATA, virtio-blk, virtio-scsi and\n"
	       "NVMe disks and as a Xen PV domU: drivers into the initramfs of every kernel,\n"
	       "GRUB2 with root=UUID and consoles tty0/ttyS0/hvc0, fstab and crypttab by\n"
	       "UUID, network naming rules removed, gettys on hvc0 and ttyS0.  Works through\n"
	       "libguestfs (one appliance launch); guest filesystems are never mounted on\n"
	       "the host.  IMAGE (raw or qcow2) is changed in place unless -O is given.\n\n"
	       "  -d, --drivers=LIST      driver groups: xen, virtio, nvme (default: all)\n"
	       "  -n, --dry-run           inspect and list every change, change nothing\n"
	       "      --output=FMT        human (default) or json\n"
	       "      --partition         wrap a filesystem that fills the whole disk into\n"
	       "                          an MBR-partitioned disk with a bootloader\n"
	       "  -f, --format=FMT        format of IMAGE (default: probe)\n"
	       "  -O, --output-format=FMT write a fixed copy to OUT in FMT, IMAGE untouched\n"
	       "      --verify[=LIST]     then boot the fixed image under QEMU (scimg boot-test)\n"
	       "                          and replace the predicted boot methods by measured\n"
	       "                          ones; LIST: buses and firmware, as in boot-test\n"
	       "                          (default: every bus, BIOS, and UEFI with an ESP);\n"
	       "                          exit 1 when a boot fails\n"
	       "      --expect=REGEX      with --verify: a console line matching REGEX also\n"
	       "                          means the guest booted (as boot-test --expect)\n"
	       "  -p, --progress          show progress on stderr: each step of the fix as it\n"
	       "                          starts ([k/n] launch, inspect, initramfs, ...) with\n"
	       "                          the time so far, and the copies of -O as convert -p\n"
	       HELP_TRUST_CHAIN
	       "  -h, --help              show this help\n"
	       "  -V, --version           show the version\n"
	       "\n" HTTP_OPTIONS_HELP "\n"
	       "Exit status: 0 success, 1 a --verify boot failed, 2 error.  See\n"
	       "scimg-inject-drivers(1).\n", prog, prog);
}

static int notice_shown;
/* -p: the progress of the copies and of the guest fix's steps */
static struct cmd_progress progress_state, *pg;

static void notice(void *opaque, const char *msg)
{
	(void)opaque;
	if (notice_shown++)
		return;
	fprintf(stderr, "%s inject-drivers: %s\n", prog, msg);
}

static int parse_drivers(const char *s, unsigned *out)
{
	char *copy = strdup(s), *tok, *save = NULL;
	unsigned d = 0;

	if (!copy)
		return -1;
	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (strcmp(tok, "xen") == 0)
			d |= SCIMG_BOOTFIX_DRV_XEN;
		else if (strcmp(tok, "virtio") == 0)
			d |= SCIMG_BOOTFIX_DRV_VIRTIO;
		else if (strcmp(tok, "nvme") == 0)
			d |= SCIMG_BOOTFIX_DRV_NVME;
		else if (strcmp(tok, "all") == 0)
			d |= SCIMG_BOOTFIX_DRV_ALL;
		else {
			free(copy);
			return -1;
		}
	}
	free(copy);
	if (!d)
		return -1;
	*out = d;
	return 0;
}

static void print_human(json_object *rep)
{
	json_object *guest = NULL, *arr = NULL, *mps = NULL;
	int dry = 0;
	size_t i, n;

	json_object_object_get_ex(rep, "dry-run", &arr);
	dry = arr && json_object_get_boolean(arr);
	if (json_object_object_get_ex(rep, "guest", &guest) && guest &&
	    json_object_object_get_ex(guest, "distro", NULL)) {
		printf("Guest: %s (%s %s, %s), root %s", jstr(guest, "product"), jstr(guest, "distro"),
		       jstr(guest, "version"), jstr(guest, "arch"), jstr(guest, "root"));
		if (*jstr(guest, "root-uuid"))
			printf(" UUID=%s", jstr(guest, "root-uuid"));
		printf("\n");
		if (json_object_object_get_ex(guest, "mountpoints", &mps) && mps) {
			printf("Filesystems:");
			json_object_object_foreach(mps, k, v)
				printf(" %s=%s", k, json_object_get_string(v));
			printf("\n");
		}
		printf("Initramfs tool: %s; bootloader: %s; ESP: %s\n", jstr(guest, "initramfs-tool"),
		       jstr(guest, "bootloader"), *jstr(guest, "esp") ? jstr(guest, "esp") : "none");
	}
	if (json_object_object_get_ex(rep, "kernels", &arr) && arr) {
		n = json_object_array_length(arr);
		for (i = 0; i < n; i++) {
			json_object *k = json_object_array_get_idx(arr, i), *drv = NULL, *inr = NULL, *def;
			int isdef = json_object_object_get_ex(k, "default", &def) && json_object_get_boolean(def);

			printf("Kernel %s%s, %s-compressed\n", jstr(k, "version"), isdef ? " (default)" : "",
			       jstr(k, "compression"));
			if (json_object_object_get_ex(k, "drivers", &drv) && drv) {
				printf("  drivers:  ");
				json_object_object_foreach(drv, dn, dv)
					printf(" %s=%s", dn, json_object_get_string(dv));
				printf("\n");
			}
			if ((json_object_object_get_ex(k, "initramfs", &inr) ||
			     json_object_object_get_ex(k, "initramfs-now", &inr)) && inr) {
				printf("  %s", dry ? "initramfs now:" : "initramfs: ");
				json_object_object_foreach(inr, dn, dv)
					printf(" %s%s", json_object_get_boolean(dv) ? "+" : "-", dn);
				printf("\n");
			}
		}
	}
	if (json_object_object_get_ex(rep, "changes", &arr) && arr) {
		n = json_object_array_length(arr);
		printf("%s (%zu):\n", dry ? "Changes that would be made" : "Changes made", n);
		for (i = 0; i < n; i++) {
			json_object *c = json_object_array_get_idx(arr, i);
			printf("  %s: %s\n", jstr(c, "what"), jstr(c, "change"));
		}
	}
	if (json_object_object_get_ex(rep, "warnings", &arr) && arr &&
	    (n = json_object_array_length(arr)) > 0) {
		printf("Warnings:\n");
		for (i = 0; i < n; i++)
			printf("  %s\n", json_object_get_string(json_object_array_get_idx(arr, i)));
	}
	if (json_object_object_get_ex(rep, "boot-methods", &arr) && arr) {
		n = json_object_array_length(arr);
		printf("Boot methods%s:\n", dry ? " (after the changes)" : "");
		for (i = 0; i < n; i++) {
			json_object *m = json_object_array_get_idx(arr, i), *w;
			int ok = json_object_object_get_ex(m, "works", &w) && json_object_get_boolean(w);
			printf("  %-22s %-3s %-9s %s\n", jstr(m, "method"), ok ? "yes" : "no",
			       jstr(m, "basis"), jstr(m, "reason"));
		}
	}
}

/* -O: copy IMAGE to a temporary image beside OUT, fix it, convert it to OUT. */
static int fixed_copy(struct scimg_ctx *ctx, const char *src, const char *src_fmt,
		      const char *out, const char *out_fmt,
		      const struct scimg_bootfix_opts *bo, json_object **rep)
{
	struct scimg_convert_opts co;
	const char *tfmt = "raw";
	char *dup = strdup(out), *tmp = NULL;
	int can_r = 0, can_w = 0, r, fd;

	if (!dup)
		return -ENOMEM;
	{
		/* OUT is replaced only at the end: refuse the input, a file of
		 * its chain, a device node or a directory now */
		struct scimg_image *si = NULL;
		r = scimg_image_open_opts(ctx, src, src_fmt, NULL, &si);
		if (r == 0)
			r = scimg_image_check_output(ctx, si, out, out_fmt, 0);
		scimg_image_close(si);
		if (r < 0) {
			free(dup);
			return r;
		}
	}
	if (scimg_format_caps("qcow2", &can_r, &can_w) == 0 && can_w)
		tfmt = "qcow2";
	if (asprintf(&tmp, "%s/.scimg-inject.XXXXXX", dirname(dup)) < 0) {
		free(dup);
		return -ENOMEM;
	}
	free(dup);
	fd = mkstemp(tmp);
	if (fd < 0) {
		/* let the library word it: opening the directory's temp name fails */
		struct scimg_image *img = NULL;
		int e = errno;
		if (scimg_image_create(ctx, out, out_fmt, 512, NULL, 0, &img) == 0)
			scimg_image_abort(img);
		free(tmp);
		return -e;
	}
	close(fd);
	memset(&co, 0, sizeof(co));
	co.size = sizeof(co);
	co.src = src;
	co.src_format = src_fmt;
	co.dst = tmp;
	co.dst_format = tfmt;
	co.sparse_size = 4096;
	if (pg) {
		co.progress_ex = cmd_progress;
		co.progress_opaque = pg;
	}
	r = scimg_convert(ctx, &co);
	if (r == 0)
		r = scimg_bootfix_run(ctx, tmp, tfmt, bo, rep);
	if (r == 0) {
		struct stat ost;
		/* a block device is written in place by the converter, never
		 * renamed over */
		if (strcmp(out_fmt, tfmt) == 0 &&
		    (stat(out, &ost) < 0 || S_ISREG(ost.st_mode))) {
			if (rename(tmp, out) != 0) {
				fprintf(stderr, "%s inject-drivers: '%s': %s\n", prog, out, strerror(errno));
				r = -EIO;
			}
		} else {
			memset(&co, 0, sizeof(co));
			co.size = sizeof(co);
			co.src = tmp;
			co.src_format = tfmt;
			co.dst = out;
			co.dst_format = out_fmt;
			co.sparse_size = 4096;
			if (pg) {
				co.progress_ex = cmd_progress;
				co.progress_opaque = pg;
			}
			r = scimg_convert(ctx, &co);
		}
	}
	unlink(tmp);
	free(tmp);
	return r;
}

/* --verify: boot the fixed image (scimg_boot_test) and put the measured
 * result in place of the prediction for each method booted.  Without a
 * list: every bus, UEFI when the guest has an ESP, and both Xen loaders
 * when the default blanket is built (else the Xen methods stay predicted,
 * and a warning says so).  1 when a boot failed. */
static int verify(struct scimg_ctx *ctx, const char *img, const char *fmt, unsigned buses,
		  unsigned firmware, unsigned xen, const char *expect, json_object *rep)
{
	struct scimg_boot_opts o;
	json_object *br = NULL, *methods, *g, *esp, *warn;
	int r, failed;

	if (!json_object_object_get_ex(rep, "boot-methods", &methods))
		return 0;
	memset(&o, 0, sizeof(o));
	o.size = sizeof(o);
	o.path = img;
	o.format = fmt;
	o.buses = buses ? buses : SCIMG_BOOT_BUS_ALL;
	if (!buses && !firmware && !xen) {
		struct scimg_blanket_opts bo;
		char *bl = NULL;

		memset(&bo, 0, sizeof(bo));
		bo.size = sizeof(bo);
		bo.no_build = 1;
		if (scimg_blanket_path(ctx, &bo, &bl, NULL) == 0) {
			xen = SCIMG_BOOT_XEN_PYGRUB | SCIMG_BOOT_XEN_PVGRUB2;
		} else if (json_object_object_get_ex(rep, "warnings", &warn)) {
			json_object_array_add(warn, json_object_new_string(
				"--verify: the Xen PV methods stay predicted: no blanket is built "
				"(scimg blanket create makes one)"));
		}
		free(bl);
	}
	o.xen = xen;
	if (!firmware) {
		firmware = SCIMG_BOOT_FW_BIOS;
		if (json_object_object_get_ex(rep, "guest", &g) &&
		    json_object_object_get_ex(g, "esp", &esp) && esp)
			firmware |= SCIMG_BOOT_FW_UEFI;
	}
	o.firmware = firmware;
	o.expect = expect;
	o.notice = notice;
	r = scimg_boot_test(ctx, &o, &br);
	if (r < 0)
		return r;
	if (!json_object_object_get_ex(rep, "warnings", &warn))
		warn = NULL;
	failed = merge_boot_results(methods, br, warn);
	json_object_object_add(rep, "boot-test", br);
	if (failed)
		json_object_object_add(rep, "result", json_object_new_string("boot-failed"));
	return failed;
}

int cmd_inject_drivers(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "drivers", required_argument, NULL, 'd' },
		{ "dry-run", no_argument, NULL, 'n' },
		{ "output", required_argument, NULL, 'J' },
		{ "partition", no_argument, NULL, 'P' },
		{ "format", required_argument, NULL, 'f' },
		{ "output-format", required_argument, NULL, 'O' },
		{ "verify", optional_argument, NULL, 'v' },
		{ "expect", required_argument, NULL, 'E' },
		{ "progress", no_argument, NULL, 'p' },
		{ "trust-chain", no_argument, NULL, OPT_TRUST_CHAIN },
		HTTP_LONG_OPTIONS,
		LONG_OPTIONS_END,
	};
	struct scimg_bootfix_opts bo;
	struct scimg_ctx *ctx;
	json_object *rep = NULL;
	const char *fmt = NULL, *out_fmt = NULL, *path, *out = NULL, *expect = NULL;
	char *probed = NULL;
	int c, r, json = 0, vr = 0, do_verify = 0;
	unsigned buses = 0, firmware = 0, xen = 0;

	memset(&bo, 0, sizeof(bo));
	bo.size = sizeof(bo);
	while ((c = getopt_long(argc, argv, ":d:nf:O:phV", longopts, NULL)) != -1) {
		switch (c) {
		case 'd':
			if (parse_drivers(optarg, &bo.drivers) < 0)
				return usage_error("inject-drivers",
						   "--drivers takes a list of xen, virtio, nvme, not '%s'", optarg);
			break;
		case 'n': bo.dry_run = 1; break;
		case 'J':
			if ((json = output_is_json(optarg)) < 0)
				return usage_error("inject-drivers", "--output must be human or json, not '%s'", optarg);
			break;
		case 'P': bo.partition = 1; break;
		case 'f': fmt = optarg; break;
		case 'O': out_fmt = optarg; break;
		case 'v':
			do_verify = 1;
			if (optarg && parse_boot_list("inject-drivers", "verify", optarg, &buses, &firmware, &xen))
				return EXIT_ERROR;
			break;
		case 'E': expect = optarg; break;
		case 'p':
			cmd_progress_init(&progress_state, "inject-drivers");
			pg = &progress_state;
			break;
		case OPT_TRUST_CHAIN: opt_trust_chain = 1; break;
		case 'h': help(); return EXIT_OK;
		case 'V': print_version(); return EXIT_OK;
		default:
			if (c >= HTTP_OPT_BASE && c <= HTTP_OPT_LAST) {
				if (http_option("inject-drivers", c, optarg) == 0)
					break;
				return EXIT_ERROR;
			}
			return bad_option("inject-drivers", c, argv);
		}
	}
	if (out_fmt) {
		if (optind != argc - 2)
			return usage_error("inject-drivers", "with -O, expected IMAGE and OUT");
		out = argv[optind + 1];
	} else if (optind != argc - 1) {
		return usage_error("inject-drivers", "expected one IMAGE");
	}
	path = argv[optind];
	if (out_fmt && bo.dry_run)
		return usage_error("inject-drivers", "--dry-run and -O cannot be used together");
	if (expect && !do_verify)
		return usage_error("inject-drivers", "--expect goes with --verify");
	if (do_verify && bo.dry_run)
		return usage_error("inject-drivers", "--verify boots the fixed image: not with --dry-run");

	ctx = cmd_ctx_new();
	install_cancel_handlers(ctx);
	bo.notice = notice;
	if (pg) {
		bo.progress_ex = cmd_progress;
		bo.progress_opaque = pg;
	}
	if (out_fmt) {
		int cr = 0, cw = 0;
		if (scimg_format_caps(out_fmt, &cr, &cw) < 0 || !cw) {
			scimg_ctx_free(ctx);
			return usage_error("inject-drivers", "cannot write format '%s'", out_fmt);
		}
	}
	if (!fmt && !out_fmt) {
		/* refuse another format by its header before its reader runs,
		 * so the hint comes even when that reader would fail */
		const char *pf = NULL;
		if (scimg_image_probe(ctx, path, &pf) == 0 && pf &&
		    strcmp(pf, "raw") != 0 && strcmp(pf, "qcow2") != 0)
			fmt = pf; /* refused below without opening it */
	}
	if (!fmt) {
		struct scimg_image *img;
		r = scimg_image_open(ctx, path, NULL, &img);
		if (r < 0) {
			die_ctx("inject-drivers", ctx);
			scimg_ctx_free(ctx);
			return EXIT_ERROR;
		}
		/* raw only because nothing else matched: let the library check
		 * the header (it knows qcow2 even where libscimg does not) */
		if (!scimg_image_raw_fallback(img))
			probed = strdup(scimg_image_format(img));
		scimg_image_close(img);
		fmt = probed;
	}
	if (out_fmt) {
		r = fixed_copy(ctx, path, fmt ? fmt : "raw", out, out_fmt, &bo, &rep);
	} else if (fmt && strcmp(fmt, "raw") != 0 && strcmp(fmt, "qcow2") != 0) {
		fprintf(stderr, "%s inject-drivers: '%s' is %s; only raw and qcow2 images are changed "
			"in place.\nConvert it first (%s convert -O qcow2 %s fixed.qcow2) or write a fixed "
			"copy with -O qcow2 OUT\n", prog, path, fmt, prog, path);
		free(probed);
		scimg_ctx_free(ctx);
		return EXIT_ERROR;
	} else {
		r = scimg_bootfix_run(ctx, path, fmt, &bo, &rep);
	}
	if (r == 0 && do_verify && rep) {
		vr = verify(ctx, out ? out : path, out ? out_fmt : fmt, buses, firmware, xen, expect, rep);
		if (vr < 0)
			r = vr;
	}
	if (rep) {
		if (json)
			printf("%s\n", json_object_to_json_string_ext(rep, JSON_C_TO_STRING_PRETTY |
									JSON_C_TO_STRING_NOSLASHESCAPE));
		else
			print_human(rep);
		json_object_put(rep);
	}
	fflush(stdout);
	if (r < 0) {
		if (pg)
			cmd_progress_end(pg);
		die_ctx("inject-drivers", ctx);
	}
	free(probed);
	scimg_ctx_free(ctx);
	return r < 0 ? EXIT_ERROR : vr > 0 ? 1 : EXIT_OK;
}
