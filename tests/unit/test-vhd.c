/* test-vhd.c - unit tests of the VHD/VHDX helpers: CRC-32C, UTF-16,
 * Windows paths and parent candidates, GUID strings, CHS geometry. */
#include <stdlib.h>
#include <string.h>

#include "scimg-int.h"
#include "formats/vhd-common.h"
#include "formats/vhdx-int.h"
#include "unit.h"

static void test_crc(void)
{
	uint8_t buf[64];

	/* the standard CRC-32C check value */
	CHECK(scimg_int_crc32c(0, "123456789", 9) == 0xe3069283);
	/* chaining gives the same result as one pass */
	CHECK(scimg_int_crc32c(scimg_int_crc32c(0, "1234", 4), "56789", 5) == 0xe3069283);
	/* the checksum field counts as zero whatever it holds */
	memset(buf, 0xab, sizeof(buf));
	memset(buf + 4, 0, 4);
	{
		uint32_t a = scimg_int_crc32c(0, buf, sizeof(buf));
		memset(buf + 4, 0x77, 4);
		CHECK(scimg_int_vhdx_checksum(buf, sizeof(buf), 4) == a);
	}
}

static void test_utf16(void)
{
	const uint8_t le[] = { 'a', 0, 0xe9, 0, 0x3d, 0xd8, 0x00, 0xde, 0, 0, 'x', 0 };
	const uint8_t be[] = { 0, 'C', 0, ':', 0, '\\', 0, 'x' };
	const uint8_t lone[] = { 'a', 0, 0x00, 0xdc, 'b', 0 };
	const uint8_t ctl[] = { 'a', 0, 0x01, 0 };
	uint8_t out[32];
	size_t bad;
	char *s;
	long n;

	s = scimg_int_vhd_utf16_to_utf8(le, sizeof(le), 0, &bad);
	CHECK(s && !strcmp(s, "a\xc3\xa9\xf0\x9f\x98\x80")); /* stops at U+0000 */
	free(s);
	s = scimg_int_vhd_utf16_to_utf8(be, sizeof(be), 1, &bad);
	CHECK(s && !strcmp(s, "C:\\x"));
	free(s);
	s = scimg_int_vhd_utf16_to_utf8(lone, sizeof(lone), 0, &bad);
	CHECK(!s && bad == 2);
	s = scimg_int_vhd_utf16_to_utf8(ctl, sizeof(ctl), 0, &bad);
	CHECK(!s && bad == 2);
	s = scimg_int_vhd_utf16_to_utf8(le, 3, 0, &bad); /* odd length: last byte ignored */
	CHECK(s && !strcmp(s, "a"));
	free(s);
	n = scimg_int_vhd_utf8_to_utf16("a\xc3\xa9\xf0\x9f\x98\x80", out, sizeof(out), 0);
	CHECK(n == 8 && !memcmp(out, le, 8));
	CHECK(scimg_int_vhd_utf8_to_utf16("abc", out, 5, 0) == -1);
	CHECK(scimg_int_vhd_utf8_to_utf16("\xc3", out, sizeof(out), 0) == -1);
	CHECK(scimg_int_vhd_utf8_to_utf16("\xed\xa0\x80", out, sizeof(out), 0) == -1);
}

static void test_paths(void)
{
	struct scimg_ctx *ctx = scimg_ctx_new();
	struct scimg_vhd_cands c;

	CHECK(!strcmp(scimg_int_vhd_basename("C:\\a\\b.vhd"), "b.vhd"));
	CHECK(!strcmp(scimg_int_vhd_basename("C:b.vhd"), "b.vhd"));
	CHECK(!strcmp(scimg_int_vhd_basename(".\\b.vhd"), "b.vhd"));
	CHECK(!strcmp(scimg_int_vhd_basename("b.vhd"), "b.vhd"));
	CHECK(!strcmp(scimg_int_vhd_basename("/x/y/b.vhd"), "b.vhd"));

	memset(&c, 0, sizeof(c));
	CHECK(scimg_int_vhd_cand_add(ctx, &c, ".\\p.vhd", "rel", 0) == 0);
	CHECK(c.n == 1 && !strcmp(c.c[0].name, "p.vhd") && !strcmp(c.c[0].shown, ".\\p.vhd"));
	CHECK(scimg_int_vhd_cand_add(ctx, &c, "..\\base\\q.vhd", "rel", 0) == 0);
	CHECK(c.n == 3 && !strcmp(c.c[1].name, "q.vhd") && !strcmp(c.c[2].name, "../base/q.vhd"));
	/* absolute Windows paths: only the basename beside the image */
	CHECK(scimg_int_vhd_cand_add(ctx, &c, "D:\\vm\\r.vhd", "abs", 0) == 0);
	CHECK(c.n == 4 && !strcmp(c.c[3].name, "r.vhd"));
	CHECK(scimg_int_vhd_cand_add(ctx, &c, "\\\\?\\Volume{1}\\vm\\p.vhd", "vol", 0) == 0);
	CHECK(c.n == 4); /* duplicate of p.vhd */
	/* MacX URLs: basename, then the absolute path */
	CHECK(scimg_int_vhd_cand_add(ctx, &c, "file://localhost/Users/a/my%20disk.vhd", "url", 1) == 0);
	CHECK(c.n == 6 && !strcmp(c.c[4].name, "my disk.vhd") &&
	      !strcmp(c.c[5].name, "/Users/a/my disk.vhd"));
	CHECK(scimg_int_vhd_cand_add(ctx, &c, "", "none", 0) == 0 && c.n == 6);
	CHECK(scimg_int_vhd_cand_add(ctx, &c, "..", "dots", 0) == 0 && c.n == 6);
	scimg_int_vhd_cands_free(&c);
	CHECK(c.n == 0);
	scimg_ctx_free(ctx);
}

static void test_guid(void)
{
	/* 2DC27766-F623-4200-9D64-115E9BFD4A08 as VHDX stores it */
	char s[37];

	scimg_int_vhd_guid_str(scimg_vhdx_guid_bat, 1, s);
	CHECK(!strcmp(s, "2dc27766-f623-4200-9d64-115e9bfd4a08"));
	scimg_int_vhd_guid_str(scimg_vhdx_guid_bat, 0, s);
	CHECK(!strcmp(s, "6677c22d-23f6-0042-9d64-115e9bfd4a08"));
}

static void geo(uint64_t size, unsigned c, unsigned h, unsigned s)
{
	uint16_t cyl;
	uint8_t heads, spt;

	scimg_int_vhd_geometry(size, &cyl, &heads, &spt);
	if (cyl != c || heads != h || spt != s)
		fprintf(stderr, "geometry of %llu: %u/%u/%u, expected %u/%u/%u\n",
			(unsigned long long)size, cyl, heads, spt, c, h, s);
	CHECK(cyl == c && heads == h && spt == s);
}

static void test_geometry(void)
{
	geo(1 << 20, 30, 4, 17);               /* heads at least 4 */
	geo(34615808, 994, 4, 17);
	geo(UINT64_C(3) << 30, 6241, 16, 63);  /* 17 -> 31 -> 63 sectors */
	geo(UINT64_C(1) << 30, 2080, 16, 63);
	geo(136365211648, 65278, 16, 255);     /* as Hyper-V and Virtual PC wrote it */
	geo(UINT64_C(300) << 30, 65535, 16, 255);
	geo(0, 0, 4, 17);
}

int main(void)
{
	test_crc();
	test_utf16();
	test_paths();
	test_guid();
	test_geometry();
	UNIT_DONE();
}
