/* content.c - say what the first bytes of a disk hold: a partition table
 * (MBR, GPT) or a bare filesystem (ext2/3/4, XFS, Btrfs, swap, LUKS).
 * Used by formats whose images are often bare filesystems (AMI bundles). */
#include <stdio.h>
#include <string.h>

#include "scimg-int.h"

static void ext_kind(const uint8_t *sb, char *buf, size_t buflen)
{
	uint32_t compat = scimg_le32(sb + 92);
	uint32_t incompat = scimg_le32(sb + 96);
	uint32_t ro = scimg_le32(sb + 100);
	const char *kind = "ext2";
	char label[17];

	/* extents, 64bit, flex_bg, huge_file, gdt_csum, dir_nlink,
	 * extra_isize, metadata_csum are ext4 features */
	if ((incompat & (0x40 | 0x80 | 0x200)) || (ro & (0x8 | 0x10 | 0x20 | 0x40 | 0x400)))
		kind = "ext4";
	else if (compat & 0x4) /* has_journal */
		kind = "ext3";
	memcpy(label, sb + 120, 16);
	label[16] = '\0';
	for (size_t i = 0; label[i]; i++)
		if ((unsigned char)label[i] < ' ' || (unsigned char)label[i] > '~')
			label[i] = '?';
	if (label[0])
		snprintf(buf, buflen, "%s filesystem, label '%s' (no partition table)", kind, label);
	else
		snprintf(buf, buflen, "%s filesystem (no partition table)", kind);
}

const char *scimg_int_detect_content(const uint8_t *h, size_t len, char *buf,
				     size_t buflen)
{
	if (len >= 520 && memcmp(h + 512, "EFI PART", 8) == 0)
		snprintf(buf, buflen, "GPT partition table");
	else if (len >= 6 && memcmp(h, "LUKS\xba\xbe", 6) == 0)
		snprintf(buf, buflen, "LUKS encrypted volume (no partition table)");
	else if (len >= 4 && memcmp(h, "XFSB", 4) == 0)
		snprintf(buf, buflen, "xfs filesystem (no partition table)");
	else if (len >= 1024 + 136 && scimg_le16(h + 1024 + 56) == 0xEF53)
		ext_kind(h + 1024, buf, buflen);
	else if (len >= 65536 + 72 && memcmp(h + 65536 + 64, "_BHRfS_M", 8) == 0)
		snprintf(buf, buflen, "btrfs filesystem (no partition table)");
	else if (len >= 4096 && (memcmp(h + 4086, "SWAPSPACE2", 10) == 0 ||
				 memcmp(h + 4086, "SWAP-SPACE", 10) == 0))
		snprintf(buf, buflen, "swap space (no partition table)");
	else if (len >= 512 && h[510] == 0x55 && h[511] == 0xAA) {
		int parts = 0, ok = 1;
		for (int i = 0; i < 4; i++) {
			const uint8_t *e = h + 446 + 16 * i;
			if (e[0] != 0 && e[0] != 0x80)
				ok = 0;
			if (e[4])
				parts++;
		}
		if (ok && parts)
			snprintf(buf, buflen, "MBR partition table (%d primary partition%s)",
				 parts, parts == 1 ? "" : "s");
		else
			snprintf(buf, buflen, "boot sector without a partition table");
	} else if (len && scimg_int_is_zero(h, len))
		snprintf(buf, buflen, "zeros (no partition table or filesystem found)");
	else
		snprintf(buf, buflen, "unknown (no partition table or known filesystem found)");
	return buf;
}
