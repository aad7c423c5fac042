/* info.c - scimg info */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"

static void help(void)
{
	printf("Usage: %s info [-f FMT] [-I KEY=VAL,...] [--output=human|json] [--no-backing] IMAGE\n\n"
	       "Show the format, virtual size, allocation and format details of IMAGE\n"
	       "(a file or an http:// or https:// URL).\n\n"
	       "  -f, --format=FMT     read IMAGE as FMT instead of probing\n"
	       "  -I, --input-options=K=V,...  options of IMAGE's format (e.g. an AMI\n"
	       "                       bundle's privatekey=FILE,cert=FILE; -I help lists them)\n"
	       "      --output=FMT     'human' (default) or 'json'\n"
	       "      --no-backing     do not open files the image refers to\n"
	       HELP_TRUST_CHAIN
	       "  -h, --help           show this help\n"
	       "  -V, --version        show the version\n"
	       "\n" HTTP_OPTIONS_HELP "\n"
	       "When no format matches, IMAGE is read as raw and info says so.\n"
	       "Exit status: 0 success, 2 error.  See scimg-info(1).\n", prog);
}

static void print_value(json_object *v, int indent);

static void print_object(json_object *o, int indent)
{
	json_object_object_foreach(o, key, val) {
		enum json_type t = json_object_get_type(val);
		printf("%*s%s:", indent, "", key);
		if (t == json_type_object || t == json_type_array) {
			printf("\n");
			print_value(val, indent + 4);
		} else {
			printf(" ");
			print_value(val, 0);
		}
	}
}

static void print_value(json_object *v, int indent)
{
	size_t i, n;

	switch (json_object_get_type(v)) {
	case json_type_object:
		print_object(v, indent);
		break;
	case json_type_array:
		n = json_object_array_length(v);
		for (i = 0; i < n; i++) {
			json_object *e = json_object_array_get_idx(v, i);
			enum json_type t = json_object_get_type(e);
			if (t == json_type_object || t == json_type_array) {
				printf("%*s[%zu]:\n", indent, "", i);
				print_value(e, indent + 4);
			} else {
				printf("%*s[%zu]: ", indent, "", i);
				print_value(e, 0);
			}
		}
		break;
	case json_type_string:
		printf("%s\n", json_object_get_string(v));
		break;
	default:
		printf("%s\n", json_object_to_json_string(v));
		break;
	}
}

static void print_human(json_object *o)
{
	json_object *v, *spec = NULL;
	char h[64];

	if (json_object_object_get_ex(o, "filename", &v))
		printf("image: %s\n", json_object_get_string(v));
	if (json_object_object_get_ex(o, "format", &v))
		printf("file format: %s\n", json_object_get_string(v));
	if (json_object_object_get_ex(o, "format-note", &v))
		printf("note: %s\n", json_object_get_string(v));
	if (json_object_object_get_ex(o, "virtual-size", &v)) {
		unsigned long long s = (unsigned long long)json_object_get_int64(v);
		human_size(s, h, sizeof(h));
		printf("virtual size: %s (%llu bytes)\n", h, s);
	}
	if (json_object_object_get_ex(o, "actual-size", &v)) {
		human_size((unsigned long long)json_object_get_int64(v), h, sizeof(h));
		printf("disk size: %s\n", h);
	}
	json_object_object_foreach(o, key, val) {
		if (!strcmp(key, "filename") || !strcmp(key, "format") ||
		    !strcmp(key, "format-note") || !strcmp(key, "virtual-size") ||
		    !strcmp(key, "actual-size") || !strcmp(key, "file-length"))
			continue;
		if (!strcmp(key, "format-specific")) {
			spec = val;
			continue;
		}
		if (json_object_get_type(val) == json_type_object ||
		    json_object_get_type(val) == json_type_array) {
			printf("%s:\n", key);
			print_value(val, 4);
		} else {
			printf("%s: ", key);
			print_value(val, 0);
		}
	}
	if (spec && json_object_object_length(spec) > 0) {
		printf("Format specific information:\n");
		print_object(spec, 4);
	}
}

int cmd_info(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "format", required_argument, NULL, 'f' },
		{ "input-options", required_argument, NULL, 'I' },
		{ "output", required_argument, NULL, 'o' },
		{ "no-backing", no_argument, NULL, 'B' },
		{ "trust-chain", no_argument, NULL, OPT_TRUST_CHAIN },
		HTTP_LONG_OPTIONS,
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct scimg_ctx *ctx;
	struct scimg_image *img = NULL;
	json_object *info = NULL;
	const char *fmt = NULL;
	char *inopts = NULL;
	int json = 0, nobacking = 0, c, ret = EXIT_ERROR;

	while ((c = getopt_long(argc, argv, ":f:I:hV", longopts, NULL)) != -1) {
		switch (c) {
		case 'f': fmt = optarg; break;
		case 'I': {
			size_t n = (inopts ? strlen(inopts) + 1 : 0) + strlen(optarg) + 1;
			char *s = malloc(n);
			if (!s)
				return EXIT_ERROR;
			snprintf(s, n, "%s%s%s", inopts ? inopts : "", inopts ? "," : "", optarg);
			free(inopts);
			inopts = s;
			break;
		}
		case 'o':
			if (!strcmp(optarg, "json"))
				json = 1;
			else if (!strcmp(optarg, "human"))
				json = 0;
			else
				return free(inopts), usage_error("info", "--output must be 'human' or 'json', not '%s'", optarg);
			break;
		case 'B': nobacking = 1; break;
		case OPT_TRUST_CHAIN: opt_trust_chain = 1; break;
		case 'h': help(); free(inopts); return EXIT_OK;
		case 'V': print_version(); free(inopts); return EXIT_OK;
		default:
			if (c >= HTTP_OPT_BASE && c <= HTTP_OPT_LAST) {
				if (http_option("info", c, optarg) == 0)
					break;
				free(inopts); return EXIT_ERROR;
			}
			free(inopts); return bad_option("info", c, argv);
		}
	}
	if (inopts && strcmp(inopts, "help") == 0) {
		free(inopts);
		return print_reader_options("info", fmt);
	}
	if (optind != argc - 1) {
		free(inopts);
		return usage_error("info", "expected exactly one IMAGE");
	}
	ctx = cmd_ctx_new();
	/* like qemu-img info: the image's own header even when a file it
	 * names is refused or missing (listed as unopened-files) */
	scimg_ctx_set_flags(ctx, scimg_ctx_get_flags(ctx) | SCIMG_CTX_HEADER_ONLY);
	if (nobacking)
		scimg_ctx_set_flags(ctx, scimg_ctx_get_flags(ctx) & ~(unsigned)SCIMG_CTX_ALLOW_BACKING);
	if (scimg_image_open_opts(ctx, argv[optind], fmt, inopts, &img) < 0 ||
	    scimg_image_info(img, &info) < 0) {
		die_ctx("info", ctx);
		goto out;
	}
	if (json)
		printf("%s\n", json_object_to_json_string_ext(info, JSON_C_TO_STRING_PRETTY |
							      JSON_C_TO_STRING_SPACED |
							      JSON_C_TO_STRING_NOSLASHESCAPE));
	else
		print_human(info);
	ret = EXIT_OK;
out:
	json_object_put(info);
	scimg_image_close(img);
	scimg_ctx_free(ctx);
	free(inopts);
	return ret;
}
