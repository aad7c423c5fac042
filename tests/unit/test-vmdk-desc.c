/* test-vmdk-desc.c - VMDK descriptor parsing and building. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/vmdk-int.h"
#include "unit.h"

static struct scimg_ctx *ctx;

static int parse(const char *text, struct vmdk_desc *d)
{
	return scimg_int_vmdk_desc_parse(ctx, "t.vmdk", 0, text, strlen(text), d);
}

static void test_basic(void)
{
	struct vmdk_desc d;
	const char *t =
		"# Disk DescriptorFile\r\n"
		"version=1\r\n"
		"encoding=\"windows-1252\"\r\n"
		"CID=fffffffe\r\n"
		"parentCID = 0000abcd \r\n"
		"isNativeSnapshot=\"no\"\r\n"
		"createType=\"vmfsSparse\"\r\n"
		"parentFileNameHint=\"base disk.vmdk\"\r\n"
		"\r\n"
		"# Extent description\r\n"
		"RW 16777216 VMFSSPARSE \"test 1-delta.vmdk\"\r\n"
		"RDONLY 100 FLAT \"b.vmdk\" 7\r\n"
		"NOACCESS 5 ZERO\r\n"
		"   \t\r\n"
		"# The Disk Data Base \r\n"
		"#DDB\r\n"
		"ddb.virtualHWVersion = \"9\"\r\n"
		"ddb.longContentID = \"e61f2478a1f3c8bc7c3a8f36fffffffe\"\r\n"
		"ddb.uuid = \"60 00 C2 99 3c 3b c5 c0-29 99 4b e2 5b 11 a2 45\"\r\n"
		"ddb.geometry.cylinders = \"16383\"\r\n"
		"ddb.geometry.heads = \"16\"\r\n"
		"ddb.geometry.sectors = \"63\"\r\n"
		"ddb.adapterType=ide\r\n"
		"ddb.some.future.key = \"x = y\"\r\n"
		"a line nobody understands\r\n";

	CHECK(parse(t, &d) == 0);
	CHECK(d.version == 1);
	CHECK(d.has_cid && d.cid == 0xfffffffeu);
	CHECK(d.has_parent_cid && d.parent_cid == 0xabcd);
	CHECK(d.create_type && !strcmp(d.create_type, "vmfsSparse"));
	CHECK(d.encoding && !strcmp(d.encoding, "windows-1252"));
	CHECK(d.parent_hint && !strcmp(d.parent_hint, "base disk.vmdk"));
	CHECK(d.hw_version && !strcmp(d.hw_version, "9"));
	CHECK(d.adapter_type && !strcmp(d.adapter_type, "ide"));
	CHECK(d.cylinders && !strcmp(d.cylinders, "16383"));
	CHECK(d.heads && !strcmp(d.heads, "16"));
	CHECK(d.sectors && !strcmp(d.sectors, "63"));
	CHECK(d.uuid && !strncmp(d.uuid, "60 00 C2", 8));
	CHECK(d.n_ext == 3);
	if (d.n_ext == 3) {
		CHECK(d.ext[0].access == VMDK_ACCESS_RW && d.ext[0].sectors == 16777216);
		CHECK(!strcmp(d.ext[0].type, "VMFSSPARSE"));
		CHECK(!strcmp(d.ext[0].file, "test 1-delta.vmdk") && !d.ext[0].has_offset);
		CHECK(d.ext[0].line == 11);
		CHECK(d.ext[1].access == VMDK_ACCESS_RDONLY && d.ext[1].has_offset &&
		      d.ext[1].offset == 7 && !strcmp(d.ext[1].file, "b.vmdk"));
		CHECK(d.ext[2].access == VMDK_ACCESS_NOACCESS && !strcmp(d.ext[2].type, "ZERO") &&
		      d.ext[2].file == NULL);
	}
	scimg_int_vmdk_desc_free(&d);

	/* embedded descriptors end at the first NUL */
	{
		char buf[200];
		memset(buf, 0, sizeof(buf));
		strcpy(buf, "createType=\"monolithicSparse\"\nRW 8 SPARSE \"x.vmdk\"\n");
		memcpy(buf + 120, "RW garbage", 10);
		CHECK(scimg_int_vmdk_desc_parse(ctx, "t", 512, buf, sizeof(buf), &d) == 0);
		CHECK(d.n_ext == 1);
		scimg_int_vmdk_desc_free(&d);
	}
}

static void expect_error(const char *text, const char *needle)
{
	struct vmdk_desc d;
	int ret = parse(text, &d);

	CHECK(ret == -EINVAL);
	if (ret == 0)
		scimg_int_vmdk_desc_free(&d);
	else if (!strstr(scimg_ctx_errmsg(ctx), needle)) {
		fprintf(stderr, "message '%s' lacks '%s'\n", scimg_ctx_errmsg(ctx), needle);
		CHECK(0);
	}
}

static void test_errors(void)
{
	expect_error("RW 0 FLAT \"a\" 0\n", "extent size is 0");
	expect_error("RW x FLAT \"a\" 0\n", "extent size is 'x FLAT");
	expect_error("RW 99999999999999999999999 FLAT \"a\"\n", "expected a number of sectors");
	expect_error("RW 10 FLAT a.vmdk\n", "has no quoted file name");
	expect_error("RW 10 FLAT \"a.vmdk\n", "no closing quote");
	expect_error("RW 10 FLAT \"\" 0\n", "file name is empty");
	expect_error("RW 10 FLAT \"a\" zz\n", "extent offset is 'zz'");
	expect_error("RW 10 FLAT \"a\" 0 junk\n", "unexpected 'junk'");
	expect_error("RW 10 VERYLONGTYPENAME \"a\"\n", "extent type");
	expect_error("version=1\nCID=xyz\n", "line 2 (offset 10): CID is 'xyz'");
	expect_error("CID=123456789\n", "CID is '123456789'");
	expect_error("parentCID=\n", "parentCID is ''");
	expect_error("version=4\n", "version is '4'");
	{
		/* more extents than allowed */
		size_t n = (VMDK_MAX_EXTENTS + 1) * 20 + 1, i;
		char *t = malloc(n), *p = t;
		for (i = 0; i <= VMDK_MAX_EXTENTS; i++)
			p += sprintf(p, "RW 1 FLAT \"f\" 0\n");
		expect_error(t, "more than 4096 extents");
		free(t);
	}
}

static void test_build(void)
{
	struct vmdk_desc_out o = {
		.cid = 0x12345678, .create_type = "streamOptimized", .extent_type = "SPARSE",
		.extent_file = "disk.vmdk", .sectors = 2097152, .adapter_type = "lsilogic",
		.hw_version = "4", .tools_version = "2147483647", .rand = { 1, 2, 3 },
	};
	struct vmdk_desc d;
	char buf[4096];
	size_t n = scimg_int_vmdk_desc_build(&o, buf, sizeof(buf));

	CHECK(n > 0 && n < sizeof(buf));
	CHECK(strstr(buf, "RW 2097152 SPARSE \"disk.vmdk\"\n") != NULL);
	CHECK(strstr(buf, "ddb.geometry.heads = \"255\"") != NULL);
	CHECK(strstr(buf, "ddb.geometry.cylinders = \"131\"") != NULL);
	CHECK(strstr(buf, "ddb.longContentID = \"00000001000000020000000312345678\"") != NULL);
	CHECK(strstr(buf, "encoding=\"UTF-8\"") != NULL);
	CHECK(parse(buf, &d) == 0);
	CHECK(d.cid == 0x12345678 && d.parent_cid == 0xffffffffu);
	CHECK(d.n_ext == 1 && d.ext[0].sectors == 2097152);
	CHECK(!strcmp(d.tools_version, "2147483647") && !strcmp(d.adapter_type, "lsilogic"));
	scimg_int_vmdk_desc_free(&d);

	o.adapter_type = "ide";
	o.extent_type = "FLAT";
	o.sectors = UINT64_C(1) << 40;
	n = scimg_int_vmdk_desc_build(&o, buf, sizeof(buf));
	CHECK(strstr(buf, "\" 0\n") != NULL);
	CHECK(strstr(buf, "ddb.geometry.cylinders = \"16383\"") != NULL);
	CHECK(strstr(buf, "ddb.geometry.heads = \"16\"") != NULL);
	CHECK(scimg_int_vmdk_desc_build(&o, buf, 100) == 0);
}

/* The descriptor-only samples of the shared fixtures parse. */
static void test_shared(void)
{
	static const char *const names[] = {
		"DAWOS-Disk.vmdk", "libvmdk-descriptor_file.1.txt",
	};
	const char *shared = getenv("SHARED_DIR");
	char path[4096], text[65536];
	struct vmdk_desc d;

	if (!shared)
		return;
	for (size_t i = 0; i < 2; i++) {
		FILE *f;
		size_t n;

		snprintf(path, sizeof(path), "%s/fixtures/external/descriptors/%s", shared, names[i]);
		f = fopen(path, "rb");
		if (!f) {
			printf("skipping %s (not found)\n", path);
			continue;
		}
		n = fread(text, 1, sizeof(text), f);
		fclose(f);
		CHECK(scimg_int_vmdk_desc_parse(ctx, names[i], 0, text, n, &d) == 0);
		CHECK(d.n_ext == 1 && d.create_type != NULL && d.has_cid);
		if (i == 0) {
			CHECK(!strcmp(d.create_type, "monolithicFlat"));
			CHECK(d.n_ext == 1 && !strcmp(d.ext[0].file, "../bin/disk.img") &&
			      d.ext[0].sectors == 10080 && d.ext[0].has_offset);
			CHECK(d.cid == 0xbc86b9fe && d.hw_version && !strcmp(d.hw_version, "4"));
		} else {
			CHECK(!strcmp(d.create_type, "monolithicSparse"));
			CHECK(d.n_ext == 1 && !strcmp(d.ext[0].type, "SPARSE") &&
			      d.ext[0].sectors == 16777216);
			CHECK(d.encoding && !strcmp(d.encoding, "windows-1252"));
		}
		scimg_int_vmdk_desc_free(&d);
	}
}

int main(void)
{
	ctx = scimg_ctx_new();
	test_basic();
	test_errors();
	test_build();
	test_shared();
	scimg_ctx_free(ctx);
	UNIT_DONE();
}
