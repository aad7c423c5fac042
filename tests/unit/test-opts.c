/* test-opts.c - -o option parsing and size parsing. */
#include <string.h>

#include "scimg-int.h"
#include "unit.h"

int main(void)
{
	static const char *const allowed[] = { "cluster_size", "compat", "name", NULL };
	struct scimg_ctx *ctx = scimg_ctx_new();
	struct scimg_opts o;
	uint64_t v = 0;

	CHECK(scimg_int_opts_parse(ctx, "cluster_size=64k,compat=1.1", allowed, "qcow2", &o) == 0);
	CHECK(o.n == 2);
	CHECK(strcmp(scimg_int_opts_get(&o, "cluster_size"), "64k") == 0);
	CHECK(strcmp(scimg_int_opts_get(&o, "compat"), "1.1") == 0);
	CHECK(scimg_int_opts_get(&o, "nope") == NULL);
	scimg_int_opts_free(&o);

	/* ",," is a literal comma; last value wins */
	CHECK(scimg_int_opts_parse(ctx, "name=a,,b,name=c,,d", allowed, "x", &o) == 0);
	CHECK(strcmp(scimg_int_opts_get(&o, "name"), "c,d") == 0);
	scimg_int_opts_free(&o);

	CHECK(scimg_int_opts_parse(ctx, "bogus=1", allowed, "qcow2", &o) == -EINVAL);
	CHECK(strstr(scimg_ctx_errmsg(ctx), "'bogus'") != NULL);
	CHECK(strstr(scimg_ctx_errmsg(ctx), "cluster_size") != NULL);
	CHECK(scimg_int_opts_parse(ctx, "novalue", allowed, "qcow2", &o) == -EINVAL);
	CHECK(scimg_int_opts_parse(ctx, "=x", allowed, "qcow2", &o) == -EINVAL);
	CHECK(scimg_int_opts_parse(ctx, "", allowed, "qcow2", &o) == 0 && o.n == 0);

	CHECK(scimg_int_parse_size("65536", &v) == 0 && v == 65536);
	CHECK(scimg_int_parse_size("64k", &v) == 0 && v == 65536);
	CHECK(scimg_int_parse_size("2M", &v) == 0 && v == 2u << 20);
	CHECK(scimg_int_parse_size("1GiB", &v) == 0 && v == 1u << 30);
	CHECK(scimg_int_parse_size("3T", &v) == 0 && v == UINT64_C(3) << 40);
	CHECK(scimg_int_parse_size("", &v) == -EINVAL);
	CHECK(scimg_int_parse_size("-1", &v) == -EINVAL);
	CHECK(scimg_int_parse_size("12x", &v) == -EINVAL);
	CHECK(scimg_int_parse_size("99999999999999999999", &v) == -EINVAL);
	CHECK(scimg_int_parse_size("100000000P", &v) == -EINVAL);

	scimg_ctx_free(ctx);
	UNIT_DONE();
}
