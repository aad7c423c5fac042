/* test-format-contract.c - every built-in format keeps the driver contract
 * (lib/formats/driver.h) that plugins' formats are held to at load time,
 * the registry holds the formats of lib/formats/formats.def in its order
 * under distinct names, and the contract refuses what it says it refuses. */
#include <stdio.h>
#include <string.h>

#include "scimg-int.h"
#include "formats/formats.h"
#include "unit.h"

static int dummy_open(struct scimg_image *img) { (void)img; return 0; }
static void dummy_close(struct scimg_image *img) { (void)img; }
static int dummy_pread(struct scimg_image *img, void *b, size_t l, uint64_t o)
{ (void)img; (void)b; (void)l; (void)o; return 0; }
static int dummy_create(struct scimg_image *img, const struct scimg_opts *o)
{ (void)img; (void)o; return 0; }
static uint32_t dummy_unit(struct scimg_image *img) { (void)img; return 65536; }

static int refused(const struct scimg_format *f, const char *want)
{
	char err[256] = "";
	int r = scimg_int_format_contract(f, "format 't'", err, sizeof(err));
	if (r == 0 || !strstr(err, want)) {
		fprintf(stderr, "expected a refusal with '%s', got %d '%s'\n", want, r, err);
		return 0;
	}
	return 1;
}

static const struct scimg_format *const listed[] = {
#define SCIMG_FORMAT(sym) &scimg_format_##sym,
#include "formats/formats.def"
#undef SCIMG_FORMAT
};

int main(void)
{
	size_t i, j, n = scimg_int_format_count();
	char err[256], what[64];
	struct scimg_format f;

	CHECK(n >= SCIMG_ARRAY_SIZE(listed));
	for (i = 0; i < SCIMG_ARRAY_SIZE(listed); i++) {
		CHECK(scimg_int_format_at(i) == listed[i]);
		CHECK(scimg_int_builtin_format_find(listed[i]->name) == listed[i]);
		for (j = 0; j < i; j++)
			CHECK(strcmp(listed[i]->name, listed[j]->name) != 0);
	}
	CHECK(strcmp(listed[SCIMG_ARRAY_SIZE(listed) - 1]->name, "raw") == 0);
	for (i = 0; i < n; i++) {
		const struct scimg_format *b = scimg_int_format_at(i);
		if (b->plugin)
			continue;
		snprintf(what, sizeof(what), "built-in format '%s'", b->name);
		err[0] = 0;
		if (scimg_int_format_contract(b, what, err, sizeof(err)) != 0) {
			fprintf(stderr, "%s\n", err);
			CHECK(!"a built-in format breaks the contract");
		}
		/* only raw is never probed */
		CHECK(b->probe != NULL || strcmp(b->name, "raw") == 0);
	}

	memset(&f, 0, sizeof(f));
	f.name = "t";
	f.description = "test";
	f.open = dummy_open;
	f.pread = dummy_pread;
	f.close = dummy_close;
	CHECK(scimg_int_format_contract(&f, "format 't'", err, sizeof(err)) == 0);
	f.name = "T";
	CHECK(refused(&f, "no valid name"));
	f.name = "t";
	f.description = NULL;
	CHECK(refused(&f, "no description"));
	f.description = "test";
	f.pread = NULL;
	CHECK(refused(&f, "pread (required with open)"));
	f.pread = dummy_pread;
	f.close = NULL;
	CHECK(refused(&f, "close"));
	f.close = dummy_close;
	f.flags = 1u << 7;
	CHECK(refused(&f, "unknown flags"));
	f.flags = SCIMG_FMT_SEQUENTIAL_WRITE;
	CHECK(refused(&f, "writer flags but cannot write"));
	f.flags = SCIMG_FMT_PARALLEL_READ;
	CHECK(scimg_int_format_contract(&f, "format 't'", err, sizeof(err)) == 0);
	f.create = dummy_create;
	CHECK(refused(&f, "pwrite (required with create)"));
	f.create = NULL;
	f.compress_unit = dummy_unit;
	CHECK(refused(&f, "compress (required with compress_unit)"));
	f.compress_unit = NULL;
	f.open = NULL;
	f.pread = NULL;
	CHECK(refused(&f, "neither an open nor a create"));
	UNIT_DONE();
}
