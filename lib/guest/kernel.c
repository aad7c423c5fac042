/* kernel.c - the compression of a Linux bzImage's payload, from the setup
 * header (Documentation/arch/x86/boot.rst: "HdrS" at 0x202, version at
 * 0x206, setup_sects at 0x1f1, payload_offset at 0x248 from protocol 2.08)
 * and the payload's magic.  Pure. */
#include <string.h>

#include "scimg-int.h"
#include "guest.h"

long long scimg_int_sg_bzimage_payload(const unsigned char *h, size_t len)
{
	unsigned setup_sects;

	if (!h || len < 0x250 || memcmp(h + 0x202, "HdrS", 4) != 0)
		return -1;
	if (scimg_le16(h + 0x206) < 0x208)
		return -1;
	setup_sects = h[0x1f1] ? h[0x1f1] : 4;
	return (long long)(setup_sects + 1) * 512 + scimg_le32(h + 0x248);
}

const char *scimg_int_sg_kernel_compression(const unsigned char *h, size_t len,
					    const unsigned char *p, size_t plen)
{
	static const struct {
		const char *magic;
		size_t len;
		const char *name;
	} m[] = {
		{ "\x1f\x8b", 2, "gzip" },
		{ "\x1f\x9e", 2, "gzip" },
		{ "\xfd" "7zXZ\0", 6, "xz" },
		{ "\x02\x21\x4c\x18", 4, "lz4" },
		{ "\x28\xb5\x2f\xfd", 4, "zstd" },
		{ "BZh", 3, "bzip2" },
		{ "\x5d\x00\x00", 3, "lzma" },
		{ "\x89LZO", 4, "lzo" },
		{ "\x7f" "ELF", 4, "none" },
	};
	size_t i;

	if (h && len >= 4 && memcmp(h, "\x7f" "ELF", 4) == 0)
		return "none";
	if (scimg_int_sg_bzimage_payload(h, len) < 0 || !p)
		return "unknown";
	for (i = 0; i < SCIMG_ARRAY_SIZE(m); i++)
		if (plen >= m[i].len && memcmp(p, m[i].magic, m[i].len) == 0)
			return m[i].name;
	return "unknown";
}
