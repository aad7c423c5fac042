/* check.c - scimg check: the CI gate for Supercloud images and any image */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"

static void help(void)
{
	printf("Usage: %s check [-f FMT] [--trust=CERT] [--container-only] [--boot[=LIST]]\n"
	       "                   [--provider=NAME] [--output=human|json] [--no-backing] IMAGE\n\n"
	       "Check that IMAGE is a valid container and a compliant Supercloud guest.\n"
	       "For a Supercloud image (.sci): tar layout, descriptor schema, member and\n"
	       "guest-content digests, signature, then the guest.  For any other format:\n"
	       "every piece of metadata parses and every extent reads, then the guest.\n"
	       "The guest is checked read-only through libguestfs: the drivers in the\n"
	       "default kernel's initramfs, a grub.cfg pvgrub2/pygrub can read, fstab\n"
	       "and root= by UUID or LABEL.\n\n"
	       "  -f, --format=FMT       read IMAGE as FMT instead of probing\n"
	       "      --trust=CERT       PEM file of certificates the signature of an SCI\n"
	       "                         must chain to; an SCI without signature fails\n"
	       "      --container-only   skip the guest checks (no appliance is started)\n"
	       "      --provider=NAME    also report what IMAGE lacks for provider profile\n"
	       "                         NAME (format, size alignment, maximum size, guest\n"
	       "                         drivers and console); Supercloud-only guest findings\n"
	       "                         become warnings ('scimg plugins' lists profiles)\n"
	       "      --boot[=LIST]      also boot IMAGE under QEMU (scimg boot-test) on the\n"
	       "                         buses and firmware of LIST (default virtio-blk,bios;\n"
	       "                         e.g. all,bios,uefi): each boot that fails is a finding\n"
	       "      --output=FMT       'human' (default) or 'json' (on stdout)\n"
	       "      --no-backing       do not open files the image refers to\n"
	       HELP_TRUST_CHAIN
	       "  -h, --help             show this help\n"
	       "  -V, --version          show the version\n"
	       "\n" HTTP_OPTIONS_HELP "\n"
	       "Exit status: 0 compliant, 1 not compliant (each finding is named),\n"
	       "2 could not check.  See scimg-check(1).\n", prog);
}

static void notice(void *opaque, const char *msg)
{
	(void)opaque;
	fprintf(stderr, "%s check: %s\n", prog, msg);
}

static void print_human(json_object *r, int rc)
{
	json_object *a, *g;
	size_t i, nerr = 0, nwarn = 0;

	printf("image: %s\nformat: %s\n", jstr(r, "image"), jstr(r, "format"));
	if (json_object_object_get_ex(r, "provider", &g))
		printf("provider: %s (%s)\n", jstr(g, "name"), jstr(g, "description"));
	if (json_object_object_get_ex(r, "checks", &a))
		for (i = 0; i < json_object_array_length(a); i++) {
			json_object *c = json_object_array_get_idx(a, i);
			printf("check %-12s %s\n", jstr(c, "name"), jstr(c, "result"));
		}
	if (json_object_object_get_ex(r, "guest", &g) &&
	    json_object_object_get_ex(g, "os", NULL))
		printf("guest: %s %s %s %s\n", jstr(g, "os"), jstr(g, "distro"),
		       jstr(g, "version"), jstr(g, "arch"));
	if (json_object_object_get_ex(r, "boot", &g) &&
	    json_object_object_get_ex(g, "methods", &a)) {
		printf("boot methods:");
		for (i = 0; i < json_object_array_length(a); i++) {
			json_object *m = json_object_array_get_idx(a, i), *l;
			printf(" %s", jstr(m, "name"));
			if (json_object_object_get_ex(m, "loader", &l))
				printf("(%s)", json_object_get_string(l));
		}
		printf("%s\n", json_object_array_length(a) ? "" : " none");
	}
	if (json_object_object_get_ex(r, "findings", &a))
		for (i = 0; i < json_object_array_length(a); i++) {
			json_object *f = json_object_array_get_idx(a, i);
			int err = !strcmp(jstr(f, "severity"), "error");
			nerr += err;
			nwarn += !err;
			printf("%s: %s: %s\n", jstr(f, "severity"), jstr(f, "id"), jstr(f, "message"));
		}
	printf("result: %s (%zu error%s, %zu warning%s)\n",
	       rc == 0 ? "compliant" : "NOT COMPLIANT", nerr, nerr == 1 ? "" : "s",
	       nwarn, nwarn == 1 ? "" : "s");
}

/* check --boot: scimg_boot_test() on the same image; its report goes under
 * "boot-test", a check "boot" is added, and each boot that did not work is
 * an error finding "boot-failed" (making the image not compliant). */
static int add_boot(struct scimg_ctx *ctx, const struct scimg_check_opts *co, unsigned buses,
		    unsigned firmware, unsigned xen, json_object *report, int *rc)
{
	struct scimg_boot_opts o;
	json_object *br = NULL, *boots, *checks, *findings, *c;
	int r;

	memset(&o, 0, sizeof(o));
	o.size = sizeof(o);
	o.path = co->path;
	o.format = co->format;
	o.buses = buses;
	o.firmware = firmware;
	o.xen = xen;
	o.notice = notice;
	r = scimg_boot_test(ctx, &o, &br);
	if (r < 0)
		return r;
	if (json_object_object_get_ex(report, "checks", &checks)) {
		c = json_object_new_object();
		json_object_object_add(c, "name", json_object_new_string("boot"));
		json_object_object_add(c, "result", json_object_new_string(r == 0 ? "pass" : "fail"));
		json_object_array_add(checks, c);
	}
	if (json_object_object_get_ex(report, "findings", &findings) &&
	    json_object_object_get_ex(br, "boots", &boots))
		for (size_t i = 0; i < json_object_array_length(boots); i++) {
			json_object *b = json_object_array_get_idx(boots, i), *f;
			char msg[1024];

			if (!strcmp(jstr(b, "result"), "ok"))
				continue;
			snprintf(msg, sizeof(msg), "%s: %s: %s", jstr(b, "method"), jstr(b, "result"),
				 jstr(b, "reason"));
			f = json_object_new_object();
			json_object_object_add(f, "id", json_object_new_string("boot-failed"));
			json_object_object_add(f, "severity", json_object_new_string("error"));
			json_object_object_add(f, "message", json_object_new_string(msg));
			json_object_array_add(findings, f);
		}
	if (r) {
		json_object_object_add(report, "compliant", json_object_new_boolean(0));
		*rc = 1;
	}
	{
		/* the predicted boot-methods table gets the measured results */
		json_object *boot, *methods;
		if (json_object_object_get_ex(report, "boot", &boot) &&
		    json_object_object_get_ex(boot, "boot-methods", &methods))
			merge_boot_results(methods, br, NULL);
	}
	json_object_object_add(report, "boot-test", br);
	return 0;
}

int cmd_check(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "format", required_argument, NULL, 'f' },
		{ "trust", required_argument, NULL, 't' },
		{ "container-only", no_argument, NULL, 'C' },
		{ "provider", required_argument, NULL, 'P' },
		{ "output", required_argument, NULL, 'o' },
		{ "no-backing", no_argument, NULL, 'B' },
		{ "trust-chain", no_argument, NULL, OPT_TRUST_CHAIN },
		HTTP_LONG_OPTIONS,
		{ "boot", optional_argument, NULL, 'T' },
		LONG_OPTIONS_END,
	};
	struct scimg_check_opts o;
	struct scimg_ctx *ctx;
	json_object *report = NULL;
	int c, rc, json = 0, nobacking = 0, boot = 0;
	unsigned buses = 0, firmware = 0, xen = 0;

	memset(&o, 0, sizeof(o));
	o.size = sizeof(o);
	while ((c = getopt_long(argc, argv, ":f:hV", longopts, NULL)) != -1) {
		switch (c) {
		case 'f': o.format = optarg; break;
		case 't': o.trust = optarg; break;
		case 'C': o.container_only = 1; break;
		case 'P': o.provider = optarg; break;
		case 'o':
			if ((json = output_is_json(optarg)) < 0)
				return usage_error("check", "--output must be 'human' or 'json', not '%s'", optarg);
			break;
		case 'B': nobacking = 1; break;
		case OPT_TRUST_CHAIN: opt_trust_chain = 1; break;
		case 'T':
			boot = 1;
			if (optarg && parse_boot_list("check", "boot", optarg, &buses, &firmware, &xen))
				return EXIT_ERROR;
			break;
		case 'h': help(); return EXIT_OK;
		case 'V': print_version(); return EXIT_OK;
		default:
			if (c >= HTTP_OPT_BASE && c <= HTTP_OPT_LAST) {
				if (http_option("check", c, optarg) == 0)
					break;
				return EXIT_ERROR;
			}
			return bad_option("check", c, argv);
		}
	}
	if (optind != argc - 1)
		return usage_error("check", "expected exactly one IMAGE");
	o.path = argv[optind];
	o.notice = notice;
	ctx = cmd_ctx_new_cancel(nobacking);
	rc = scimg_check(ctx, &o, &report);
	if (rc < 0) {
		die_ctx("check", ctx);
		scimg_ctx_free(ctx);
		return EXIT_ERROR;
	}
	if (boot && add_boot(ctx, &o, buses, firmware, xen, report, &rc) < 0) {
		die_ctx("check", ctx);
		json_object_put(report);
		scimg_ctx_free(ctx);
		return EXIT_ERROR;
	}
	if (json)
		printf("%s\n", json_object_to_json_string_ext(report, JSON_C_TO_STRING_PRETTY |
								JSON_C_TO_STRING_SPACED |
								JSON_C_TO_STRING_NOSLASHESCAPE));
	else
		print_human(report, rc);
	json_object_put(report);
	scimg_ctx_free(ctx);
	return rc == 0 ? EXIT_OK : EXIT_DIFFERENT;
}
