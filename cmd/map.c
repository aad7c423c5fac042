/* map.c - scimg map: where the guest bytes of an image come from, as
 * qemu-img map prints it. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"

static void help(void)
{
	printf("Usage: %s map [--output=human|json] [-f FMT] [--no-backing] IMAGE\n\n"
	       "Show, run by run, where the guest bytes of IMAGE come from: which image of\n"
	       "its backing chain (depth), whether it is allocated (present), reads as\n"
	       "zeros (zero) or from a file (data), and where in that file (offset).\n"
	       "The JSON output has qemu-img map's keys: start, length, depth, present,\n"
	       "zero, data and, when known, offset.\n\n"
	       "  -f, --format=FMT        read IMAGE as FMT instead of probing\n"
	       "      --output=FMT        human (default: the runs read from a file; refused\n"
	       "                          for compressed images) or json (every run)\n"
	       "      --no-backing        do not open files IMAGE refers to\n"
	       "  -h, --help              show this help\n"
	       "  -V, --version           show the version\n\n"
	       "Exit status: 0 success, 2 error.  See scimg-map(1).\n", prog);
}

/* Two runs print as one when nothing but their length tells them apart. */
static int mergeable(const struct scimg_map_extent *a, const struct scimg_map_extent *b)
{
	if (a->depth != b->depth || a->present != b->present || a->zero != b->zero ||
	    a->data != b->data || a->compressed != b->compressed ||
	    (a->host_offset == UINT64_MAX) != (b->host_offset == UINT64_MAX))
		return 0;
	if (a->file != b->file && (!a->file || !b->file || strcmp(a->file, b->file)))
		return 0;
	return a->host_offset == UINT64_MAX ||
	       a->host_offset + a->length == b->host_offset;
}

static void print_json(const struct scimg_map_extent *e, int first)
{
	printf("%s{ \"start\": %llu, \"length\": %llu, \"depth\": %d, \"present\": %s, \"zero\": %s, \"data\": %s",
	       first ? "[" : ",\n", (unsigned long long)e->offset,
	       (unsigned long long)e->length, e->depth,
	       e->present ? "true" : "false", e->zero ? "true" : "false",
	       e->data ? "true" : "false");
	if (e->host_offset != UINT64_MAX)
		printf(", \"offset\": %llu", (unsigned long long)e->host_offset);
	printf("}");
}

/* Human output lists the runs read from a file (data that is not in a
 * hole); 0, or -1 for data whose file offset is unknown (as qemu-img). */
static int print_human(const struct scimg_map_extent *e, int *first)
{
	const char *f = e->file ? e->file : "";

	/* a backing file of an image in the current directory is "./NAME" */
	while (f[0] == '.' && f[1] == '/')
		f += 2;
	if (e->data && e->host_offset == UINT64_MAX) {
		fprintf(stderr, "%s map: '%s': runs at offset %llu are compressed or stored without a file offset; use --output=json\n",
			prog, f, (unsigned long long)e->offset);
		return -1;
	}
	if (!e->data || e->zero)
		return 0;
	if (*first)
		printf("%-16s%-16s%-16s%s\n", "Offset", "Length", "Mapped to", "File");
	*first = 0;
	printf("%#-16llx%#-16llx%#-16llx%s\n", (unsigned long long)e->offset,
	       (unsigned long long)e->length, (unsigned long long)e->host_offset, f);
	return 0;
}

int cmd_map(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "format", required_argument, NULL, 'f' },
		{ "output", required_argument, NULL, 'O' },
		{ "no-backing", no_argument, NULL, 'B' },
		LONG_OPTIONS_END,
	};
	struct scimg_ctx *ctx;
	struct scimg_image *img = NULL;
	struct scimg_map_extent cur, e;
	const char *fmt = NULL;
	int c, json = 0, nobacking = 0, ret = EXIT_ERROR, have = 0, first = 1;
	uint64_t pos = 0, size;

	while ((c = getopt_long(argc, argv, ":f:hV", longopts, NULL)) != -1) {
		switch (c) {
		case 'f': fmt = optarg; break;
		case 'O':
			if ((json = output_is_json(optarg)) < 0)
				return usage_error("map", "--output=%s: expected human or json", optarg);
			break;
		case 'B': nobacking = 1; break;
		case 'h': help(); return EXIT_OK;
		case 'V': print_version(); return EXIT_OK;
		default: return bad_option("map", c, argv);
		}
	}
	if (optind != argc - 1)
		return usage_error("map", "expected IMAGE");
	ctx = cmd_ctx_new_cancel(nobacking);
	if (scimg_image_open(ctx, argv[optind], fmt, &img) < 0) {
		die_ctx("map", ctx);
		goto out;
	}
	size = scimg_image_size(img);
	while (pos < size) {
		if (scimg_image_map(img, pos, size - pos, &e) < 0) {
			if (have || !first)
				printf("\n");
			die_ctx("map", ctx);
			goto out;
		}
		if (have && mergeable(&cur, &e)) {
			cur.length += e.length;
		} else {
			if (have) {
				if (json)
					print_json(&cur, first), first = 0;
				else if (print_human(&cur, &first) < 0)
					goto out;
			}
			cur = e;
			have = 1;
		}
		pos += e.length;
	}
	if (have) {
		if (json)
			print_json(&cur, first), first = 0;
		else if (print_human(&cur, &first) < 0)
			goto out;
	}
	if (json)
		printf(first ? "[]\n" : "]\n");
	ret = EXIT_OK;
out:
	scimg_image_close(img);
	scimg_ctx_free(ctx);
	return ret;
}
