/* foreign.c - formats scimg recognises but cannot read.
 *
 * When no reader probes an image, its bytes would be copied as raw; for a
 * container scimg knows by its magic but cannot read (Parallels, DMG,
 * bochs, cloop, QEMU qcow version 1, QED, VDI without its plugin, LUKS,
 * a compressed file) that copy is the container's bytes, not the disk.
 * image.c refuses such a file, naming what it is, unless the caller asked
 * for raw explicitly.
 */
#include <string.h>

#include "scimg-int.h"

static int head_is(const struct scimg_probe *p, size_t off, const void *magic, size_t n)
{
	return p->head_len >= off + n && memcmp(p->head + off, magic, n) == 0;
}

const char *scimg_int_foreign_format(const struct scimg_probe *p)
{
	if (head_is(p, 0, "WithoutFreeSpace", 16) || head_is(p, 0, "WithouFreSpacExt", 16))
		return "Parallels disk image";
	if (head_is(p, 0, "Bochs Virtual HD Image", 22))
		return "Bochs disk image";
	if (head_is(p, 0, "#!/bin/sh", 9) && p->head_len >= 128 &&
	    memmem(p->head, 128, "cloop", 5))
		return "cloop compressed image";
	if (head_is(p, 0, "QFI\xfb", 4) && p->head_len >= 8) {
		uint32_t v = scimg_be32(p->head + 4);
		if (v == 1)
			return "QEMU qcow image (version 1)";
		return "QEMU qcow2 image whose header scimg's reader does not accept";
	}
	if (head_is(p, 0, "QED\0", 4))
		return "QEMU QED image";
	if (p->head_len >= 0x44 && scimg_le32(p->head + 0x40) == 0xbeda107fu)
		return "VirtualBox VDI image (the vdi plugin is not loaded)";
	if (head_is(p, 0, "LUKS\xba\xbe", 6) || head_is(p, 0, "SKUL\xba\xbe", 6))
		return "LUKS encrypted volume";
	if (p->tail_len >= 512 && memcmp(p->tail + p->tail_len - 512, "koly", 4) == 0)
		return "Apple disk image (DMG)";
	if (head_is(p, 0, "\x1f\x8b", 2))
		return "gzip-compressed file";
	if (head_is(p, 0, "\xfd" "7zXZ\0", 6))
		return "xz-compressed file";
	if (head_is(p, 0, "\x28\xb5\x2f\xfd", 4))
		return "zstd-compressed file";
	if (head_is(p, 0, "BZh", 3) && head_is(p, 4, "1AY&SY", 6))
		return "bzip2-compressed file";
	if (head_is(p, 0, "7z\xbc\xaf\x27\x1c", 6))
		return "7-Zip archive";
	if (head_is(p, 0, "PK\x03\x04", 4))
		return "ZIP archive";
	if (head_is(p, 0, "MSWIM\0\0\0", 8))
		return "Windows imaging (WIM) file";
	return NULL;
}
