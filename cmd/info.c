/* info.c - scimg info */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cmd.h"

static void help(void)
{
	printf("Usage: %s info [-f FMT] [-I KEY=VAL,...] [--output=human|json] [--no-backing]\n"
	       "                  [--backing-chain] [-U] IMAGE\n"
	       "       %s info --image-opts [...] driver=FMT,file.filename=IMAGE\n\n"
	       "Show the format, virtual size, allocation and format details of IMAGE\n"
	       "(a file or an http:// or https:// URL).  The JSON is qemu-img's (same\n"
	       "keys, nesting and format names, \"vpc\" for VHD); scimg's own details\n"
	       "are under \"scimg\".\n\n"
	       "  -f, --format=FMT     read IMAGE as FMT instead of probing ('vpc' = 'vhd')\n"
	       "  -I, --input-options=K=V,...  options of IMAGE's format (e.g. an AMI\n"
	       "                       bundle's privatekey=FILE,cert=FILE; -I help lists them)\n"
	       "      --output=FMT     'human' (default) or 'json'\n"
	       "      --backing-chain  show every image of the backing chain, top first\n"
	       "                       (JSON: an array)\n"
	       "      --image-opts     IMAGE is driver=FMT,file.filename=PATH\n"
	       "  -U, --force-share    accepted for qemu-img compatibility (scimg never\n"
	       "                       locks images)\n"
	       "      --no-backing     do not open files the image refers to\n"
	       HELP_TRUST_CHAIN
	       "  -h, --help           show this help\n"
	       "  -V, --version        show the version\n"
	       "\n" HTTP_OPTIONS_HELP "\n"
	       "When no format matches, IMAGE is read as raw and info says so.\n"
	       "Exit status: 0 success, 2 error.  See scimg-info(1).\n", prog, prog);
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

/* Keys print_human() shows itself (the rest are listed as they come). */
static const char *const shown[] = {
	"filename", "format", "format-note", "virtual-size", "actual-size",
	"file-length", "cluster-size", "dirty-flag", "backing-filename",
	"full-backing-filename", "backing-filename-format", "backing-image",
	"snapshots", "format-specific", "scimg", NULL,
};

static int is_shown(const char *key)
{
	for (size_t i = 0; shown[i]; i++)
		if (!strcmp(key, shown[i]))
			return 1;
	return 0;
}

static void print_snapshots(json_object *a)
{
	size_t i, n = json_object_array_length(a);

	printf("Snapshot list:\n%-10s %-20s %12s %19s %15s\n", "ID", "TAG", "VM SIZE",
	       "DATE", "VM CLOCK");
	for (i = 0; i < n; i++) {
		json_object *s = json_object_array_get_idx(a, i), *v;
		long long vs = 0, ds = 0, cs = 0, cn = 0;
		char date[32] = "", h[64];
		time_t t;
		struct tm tm;

		if (json_object_object_get_ex(s, "vm-state-size", &v))
			vs = (long long)json_object_get_int64(v);
		if (json_object_object_get_ex(s, "date-sec", &v))
			ds = (long long)json_object_get_int64(v);
		if (json_object_object_get_ex(s, "vm-clock-sec", &v))
			cs = (long long)json_object_get_int64(v);
		if (json_object_object_get_ex(s, "vm-clock-nsec", &v))
			cn = (long long)json_object_get_int64(v);
		t = (time_t)ds;
		if (gmtime_r(&t, &tm))
			strftime(date, sizeof(date), "%Y-%m-%d %H:%M:%S", &tm);
		human_size((unsigned long long)vs, h, sizeof(h));
		printf("%-10s %-20s %12s %19s %04lld:%02lld:%02lld.%03lld\n",
		       json_object_object_get_ex(s, "id", &v) ? json_object_get_string(v) : "",
		       json_object_object_get_ex(s, "name", &v) ? json_object_get_string(v) : "",
		       h, date, cs / 3600, cs / 60 % 60, cs % 60, cn / 1000000);
	}
}

static void print_human(json_object *o)
{
	json_object *v, *w;
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
	if (json_object_object_get_ex(o, "cluster-size", &v))
		printf("cluster_size: %lld\n", (long long)json_object_get_int64(v));
	if (json_object_object_get_ex(o, "backing-filename", &v)) {
		printf("backing file: %s", json_object_get_string(v));
		if (json_object_object_get_ex(o, "full-backing-filename", &w) &&
		    strcmp(json_object_get_string(v), json_object_get_string(w)))
			printf(" (actual path: %s)", json_object_get_string(w));
		printf("\n");
	}
	if (json_object_object_get_ex(o, "backing-filename-format", &v))
		printf("backing file format: %s\n", json_object_get_string(v));
	if (json_object_object_get_ex(o, "snapshots", &v) &&
	    json_object_array_length(v) > 0)
		print_snapshots(v);
	if (json_object_object_get_ex(o, "dirty-flag", &v) && json_object_get_boolean(v))
		printf("dirty flag: yes\n");
	json_object_object_foreach(o, key, val) {
		if (is_shown(key))
			continue;
		if (json_object_get_type(val) == json_type_object ||
		    json_object_get_type(val) == json_type_array) {
			printf("%s:\n", key);
			print_value(val, 4);
		} else {
			printf("%s: ", key);
			print_value(val, 0);
		}
	}
	if (json_object_object_get_ex(o, "format-specific", &v) &&
	    json_object_object_get_ex(v, "data", &w) && json_object_object_length(w) > 0) {
		printf("Format specific information:\n");
		print_object(w, 4);
	}
	if (json_object_object_get_ex(o, "scimg", &v) && json_object_object_length(v) > 0) {
		printf("scimg details:\n");
		print_object(v, 4);
	}
}

/* --image-opts: "driver=FMT,file.filename=PATH" (",," is a comma). */
static int image_opts(const char *s, char **fmt, char **path)
{
	char *buf = malloc(strlen(s) + 1), *p, *key;
	const char *q = s;
	int ret = 0;

	*fmt = *path = NULL;
	if (!buf)
		return -1;
	while (*q && !ret) {
		char **dst;
		p = buf;
		while (*q && !(*q == ',' && q[1] != ',')) {
			if (*q == ',')
				q++;
			*p++ = *q++;
		}
		*p = '\0';
		if (*q == ',')
			q++;
		key = buf;
		p = strchr(buf, '=');
		if (!p) {
			ret = usage_error("info", "--image-opts: '%s' is not KEY=VALUE", key);
			break;
		}
		*p++ = '\0';
		if (!strcmp(key, "driver"))
			dst = fmt;
		else if (!strcmp(key, "file.filename") || !strcmp(key, "filename"))
			dst = path;
		else {
			ret = usage_error("info", "--image-opts: key '%s' is not supported (only driver= and file.filename=)", key);
			break;
		}
		free(*dst);
		if (!(*dst = strdup(p)))
			ret = EXIT_ERROR;
	}
	free(buf);
	if (!ret && !*path)
		ret = usage_error("info", "--image-opts: file.filename= is missing");
	if (ret) {
		free(*fmt);
		free(*path);
		*fmt = *path = NULL;
	}
	return ret;
}

static void print_json(json_object *o)
{
	printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
							 JSON_C_TO_STRING_SPACED |
							 JSON_C_TO_STRING_NOSLASHESCAPE));
}

/* --backing-chain: one object per image, top first (the nesting of
 * "backing-image" unrolled). */
static json_object *chain_array(json_object *info)
{
	json_object *a = json_object_new_array(), *cur = json_object_get(info), *next;
	int n = 0;

	while (a && cur && n++ < 4096) {
		next = NULL;
		if (json_object_object_get_ex(cur, "backing-image", &next)) {
			json_object_get(next);
			json_object_object_del(cur, "backing-image");
		}
		json_object_array_add(a, cur);
		cur = next;
	}
	json_object_put(cur);
	return a;
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
		{ "backing-chain", no_argument, NULL, 'c' },
		{ "image-opts", no_argument, NULL, 'i' },
		{ "force-share", no_argument, NULL, 'U' },
		LONG_OPTIONS_END,
	};
	struct scimg_ctx *ctx;
	struct scimg_image *img = NULL;
	json_object *info = NULL;
	const char *fmt = NULL, *path;
	char *inopts = NULL, *ifmt = NULL, *ipath = NULL;
	int json = 0, nobacking = 0, chain = 0, iopts = 0, c, ret = EXIT_ERROR;

	while ((c = getopt_long(argc, argv, ":f:I:UhV", longopts, NULL)) != -1) {
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
			if ((json = output_is_json(optarg)) < 0)
				return free(inopts), usage_error("info", "--output must be 'human' or 'json', not '%s'", optarg);
			break;
		case 'B': nobacking = 1; break;
		case OPT_TRUST_CHAIN: opt_trust_chain = 1; break;
		case 'c': chain = 1; break;
		case 'i': iopts = 1; break;
		case 'U': break; /* scimg never locks an image */
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
	path = argv[optind];
	if (iopts) {
		if (fmt) {
			free(inopts);
			return usage_error("info", "--image-opts and -f are mutually exclusive");
		}
		if ((ret = image_opts(argv[optind], &ifmt, &ipath)) != 0) {
			free(inopts);
			return ret;
		}
		fmt = ifmt;
		path = ipath;
		ret = EXIT_ERROR;
	}
	if (chain && nobacking) {
		free(inopts);
		free(ifmt);
		free(ipath);
		return usage_error("info", "--backing-chain and --no-backing are mutually exclusive");
	}
	ctx = cmd_ctx_new();
	/* like qemu-img info: the image's own header even when a file it
	 * names is refused or missing (listed as unopened-files) */
	scimg_ctx_set_flags(ctx, scimg_ctx_get_flags(ctx) | SCIMG_CTX_HEADER_ONLY);
	if (nobacking)
		scimg_ctx_set_flags(ctx, scimg_ctx_get_flags(ctx) & ~(unsigned)SCIMG_CTX_ALLOW_BACKING);
	if (scimg_image_open_opts(ctx, path, fmt, inopts, &img) < 0 ||
	    scimg_image_info(img, &info) < 0) {
		die_ctx("info", ctx);
		goto out;
	}
	if (chain) {
		json_object *a = chain_array(info);
		size_t i;

		if (!a) {
			fprintf(stderr, "%s info: out of memory\n", prog);
			goto out;
		}
		if (json)
			print_json(a);
		else
			for (i = 0; i < json_object_array_length(a); i++) {
				if (i)
					printf("\n");
				print_human(json_object_array_get_idx(a, i));
			}
		json_object_put(a);
	} else if (json) {
		print_json(info);
	} else {
		print_human(info);
	}
	ret = EXIT_OK;
out:
	json_object_put(info);
	scimg_image_close(img);
	scimg_ctx_free(ctx);
	free(inopts);
	free(ifmt);
	free(ipath);
	return ret;
}
