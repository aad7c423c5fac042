/* imgutil.c - helpers of the image subcommands (create, measure, map,
 * resize, rebase): sizes as qemu-img takes them, -o help. */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"

int parse_size_arg(const char *s, uint64_t *out)
{
	static const char units[] = "bkmgtpe";
	unsigned long long v;
	const char *u;
	char *end;
	unsigned shift = 0;

	if (!s || !isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return -EINVAL;
	if (*end) {
		if (end[1] || !(u = strchr(units, tolower((unsigned char)*end))))
			return -EINVAL;
		shift = (unsigned)(u - units) * 10;
	}
	if (shift && v > (UINT64_MAX >> shift))
		return -EINVAL;
	*out = (uint64_t)v << shift;
	return 0;
}

int print_create_option_help(const char *sub, const char *format)
{
	const struct scimg_create_option *o = scimg_format_create_option_help(format);
	const char *const *keys = scimg_format_create_options(format);

	if (!keys && o) {
		/* written by scimg convert only (sci): the table has the keys */
		printf("Options of format '%s' (-o KEY=VALUE,...; scimg convert only):\n", format);
		for (; o->key; o++)
			printf("  %-18s %s%s%s%s\n", o->key, o->help, o->def ? " (default: " : "",
			       o->def ? o->def : "", o->def ? ")" : "");
		return EXIT_OK;
	}
	if (!keys) {
		fprintf(stderr, "%s %s: format '%s' cannot be written\n", prog, sub, format);
		return EXIT_ERROR;
	}
	printf("Options of format '%s' (-o KEY=VALUE,...):\n", format);
	if (!*keys)
		printf("  (none)\n");
	for (; *keys; keys++) {
		const struct scimg_create_option *h = NULL, *p;

		for (p = o; p && p->key; p++)
			if (!strcmp(p->key, *keys))
				h = p;
		if (!h) {
			/* a plugin's writer: its keys come without a description
			 * (see the plugin's manual) */
			printf("  %s\n", *keys);
			continue;
		}
		printf("  %-18s %s", h->key, h->help);
		if (h->def)
			printf(" (default: %s)", h->def);
		printf("\n");
	}
	return EXIT_OK;
}
