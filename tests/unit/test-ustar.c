/* test-ustar.c - the ustar header fields of lib/package/tar.c (the one
 * place the ami, ova and gce-tar writers and the sci, ova and gce-tar probes
 * take them from): what is written reads back, damaged headers are
 * refused, sizes past the octal field use base-256 and a pax record. */
#include <stdint.h>
#include <string.h>

#include "package/package.h"
#include "unit.h"

int main(void)
{
	uint8_t h[USTAR_BLOCK], p[2 * USTAR_BLOCK];
	const uint64_t big = (UINT64_C(1) << 33) + 12345; /* past 8 GiB */

	/* a POSIX header: name, type, size, magic, a valid checksum */
	scimg_int_ustar_header(h, "disk0.qcow2", '0', 1536, 1700000000, 0);
	CHECK(memcmp(h, "disk0.qcow2", 12) == 0);
	CHECK(h[156] == '0');
	CHECK(memcmp(h + 257, "ustar\0" "00", 8) == 0);
	CHECK(memcmp(h + 124, "00000003000", 12) == 0);
	CHECK(scimg_int_ustar_magic(h) && scimg_int_ustar_ok(h));
	CHECK(scimg_int_ustar_size(h) == 1536);

	/* one changed byte: magic still there, checksum no longer matches */
	h[10] ^= 1;
	CHECK(scimg_int_ustar_magic(h) && !scimg_int_ustar_ok(h));
	h[10] ^= 1;
	/* an empty checksum field is not a checksum of 0 */
	memset(h + 148, ' ', 8);
	CHECK(!scimg_int_ustar_ok(h));
	/* no magic */
	scimg_int_ustar_header(h, "x", '0', 1, 0, 0);
	memcpy(h + 257, "tsura", 5);
	CHECK(!scimg_int_ustar_magic(h) && !scimg_int_ustar_ok(h));

	/* the signed checksum old tars wrote (a byte >= 0x80 in the name) */
	scimg_int_ustar_header(h, "caf\xc3\xa9", '0', 1, 0, 0);
	{
		int s = 0;
		for (int i = 0; i < USTAR_BLOCK; i++)
			s += (signed char)((i >= 148 && i < 156) ? ' ' : h[i]);
		snprintf((char *)h + 148, 8, "%06o", (unsigned)s & 0777777u);
		h[155] = ' ';
	}
	CHECK(scimg_int_ustar_ok(h));

	/* old GNU magic (GNU sparse members) */
	scimg_int_ustar_header(h, "disk.raw", 'S', 4096, 0, 1);
	CHECK(memcmp(h + 257, "ustar  \0", 8) == 0 && scimg_int_ustar_ok(h));

	/* past 8 GiB: base-256 in the header, read back exactly */
	scimg_int_ustar_header(h, "image.part", '0', big, 0, 0);
	CHECK(h[124] == 0x80);
	CHECK(scimg_int_ustar_ok(h));
	CHECK(scimg_int_ustar_size(h) == big);
	/* a base-256 value wider than 64 bits, or junk, is no size */
	h[126] = 1;
	CHECK(scimg_int_ustar_size(h) == UINT64_MAX);
	scimg_int_ustar_header(h, "x", '0', 7, 0, 0);
	h[130] = 'z';
	CHECK(scimg_int_ustar_size(h) == UINT64_MAX);
	memset(h + 124, ' ', 12);
	CHECK(scimg_int_ustar_size(h) == UINT64_MAX);

	/* the pax size record: "LEN size=N\n" where LEN counts itself */
	scimg_int_ustar_pax_size(p, "image.part", big, 0);
	CHECK(p[156] == 'x' && scimg_int_ustar_ok(p));
	CHECK(memcmp(p, "PaxHeaders/image.part", 22) == 0);
	{
		char want[64];
		int n = snprintf(want, sizeof(want), "%d size=%llu\n", 0, (unsigned long long)big);
		/* LEN has two digits here: the record is n - 1 + 2 bytes long */
		snprintf(want, sizeof(want), "%d size=%llu\n", n + 1, (unsigned long long)big);
		CHECK(strcmp((const char *)p + USTAR_BLOCK, want) == 0);
		CHECK(scimg_int_ustar_size(p) == strlen(want));
	}

	/* numeric fields: octal when it fits, base-256 at the boundary */
	memset(h, 0, 12);
	scimg_int_ustar_num(h, 12, (UINT64_C(1) << 33) - 1);
	CHECK(memcmp(h, "77777777777", 12) == 0);
	scimg_int_ustar_num(h, 12, UINT64_C(1) << 33);
	CHECK(h[0] == 0x80 && h[7] == 2 && h[8] == 0 && h[11] == 0);
	UNIT_DONE();
}
