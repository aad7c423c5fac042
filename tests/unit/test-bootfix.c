/* test-bootfix.c - the pure helpers of lib/bootfix/: guest device names,
 * kernel compression from a bzImage header, NAME=value files, module names,
 * the partition table seen from the host (--partition without a new disk). */
#include <stdlib.h>
#include <string.h>

#include "bootfix/bootfix-int.h"
#include "unit.h"

static void devnames(void)
{
	int d = -9, p = -9;

	CHECK(bf_parse_devname("/dev/sda1", &d, &p) == 0 && d == 0 && p == 1);
	CHECK(bf_parse_devname("/dev/sdb", &d, &p) == 0 && d == 1 && p == 0);
	CHECK(bf_parse_devname("/dev/xvda1", &d, &p) == 0 && d == 0 && p == 1);
	CHECK(bf_parse_devname("/dev/xvdc12", &d, &p) == 0 && d == 2 && p == 12);
	CHECK(bf_parse_devname("/dev/vda2", &d, &p) == 0 && d == 0 && p == 2);
	CHECK(bf_parse_devname("/dev/hda", &d, &p) == 0 && d == 0 && p == 0);
	CHECK(bf_parse_devname("/dev/sdaa1", &d, &p) == 0 && d == 26 && p == 1);
	CHECK(bf_parse_devname("/dev/nvme0n1p3", &d, &p) == 0 && d == 0 && p == 3);
	CHECK(bf_parse_devname("/dev/nvme1n1", &d, &p) == 0 && d == 1 && p == 0);
	CHECK(bf_parse_devname("/dev/mapper/root", &d, &p) < 0);
	CHECK(bf_parse_devname("UUID=abc", &d, &p) < 0);
	CHECK(bf_parse_devname("/dev/sd", &d, &p) < 0);
	CHECK(bf_parse_devname("/dev/sda1x", &d, &p) < 0);
	CHECK(bf_parse_devname("/dev/nvme0", &d, &p) < 0);
	CHECK(bf_parse_devname("/dev/nvme0n1p", &d, &p) < 0);
	CHECK(bf_parse_devname("/dev/sda99999999999", &d, &p) < 0);
	CHECK(bf_parse_devname("/dev/sdzzzzzzzz1", &d, &p) < 0);
}

static void compression(void)
{
	unsigned char h[4096];
	static const struct {
		const char *magic;
		size_t len;
		const char *name;
	} m[] = {
		{ "\x1f\x8b\x08", 3, "gzip" },
		{ "\xfd" "7zXZ\0", 6, "xz" },
		{ "\x02\x21\x4c\x18", 4, "lz4" },
		{ "\x28\xb5\x2f\xfd", 4, "zstd" },
		{ "BZh9", 4, "bzip2" },
		{ "\x5d\x00\x00\x80", 4, "lzma" },
		{ "\x89LZO", 4, "lzo" },
		{ "\x7f" "ELF", 4, "none" },
		{ "????", 4, "unknown" },
	};
	size_t i;

	memset(h, 0, sizeof(h));
	CHECK(scimg_int_sg_bzimage_payload(h, sizeof(h)) == -1);
	CHECK(strcmp(scimg_int_sg_kernel_compression(h, sizeof(h), NULL, 0), "unknown") == 0);
	memcpy(h + 0x202, "HdrS", 4);
	scimg_put_le16(h + 0x206, 0x020f);
	h[0x1f1] = 27;
	scimg_put_le32(h + 0x248, 0x3a5);
	CHECK(scimg_int_sg_bzimage_payload(h, sizeof(h)) == 28 * 512 + 0x3a5);
	CHECK(scimg_int_sg_bzimage_payload(h, 0x100) == -1); /* short head */
	for (i = 0; i < sizeof(m) / sizeof(m[0]); i++)
		CHECK(strcmp(scimg_int_sg_kernel_compression(h, sizeof(h), (const unsigned char *)m[i].magic,
						   m[i].len), m[i].name) == 0);
	scimg_put_le16(h + 0x206, 0x0207); /* no payload fields before 2.08 */
	CHECK(scimg_int_sg_bzimage_payload(h, sizeof(h)) == -1);
	h[0x1f1] = 0;
	scimg_put_le16(h + 0x206, 0x0208);
	scimg_put_le32(h + 0x248, 0);
	CHECK(scimg_int_sg_bzimage_payload(h, sizeof(h)) == 5 * 512); /* 0 means 4 */
	CHECK(strcmp(scimg_int_sg_kernel_compression((const unsigned char *)"\x7f" "ELF", 4, NULL, 0), "none") == 0);
}

static void shvars(void)
{
	const char *t = "# comment\nGRUB_DEFAULT=0\nGRUB_CMDLINE_LINUX=\"quiet splash\"\n"
			"export MODULES=dep # trailing\nA='x y'\n";
	char *v, *n;

	v = bf_shvar_get(t, "GRUB_CMDLINE_LINUX");
	CHECK(v && strcmp(v, "quiet splash") == 0);
	free(v);
	v = bf_shvar_get(t, "MODULES");
	CHECK(v && strcmp(v, "dep") == 0);
	free(v);
	v = bf_shvar_get(t, "A");
	CHECK(v && strcmp(v, "x y") == 0);
	free(v);
	CHECK(bf_shvar_get(t, "GRUB") == NULL);
	CHECK(bf_shvar_get(t, "NOPE") == NULL);

	n = bf_shvar_set(t, "MODULES", "most", 0);
	CHECK(n && strstr(n, "\nMODULES=most\nA=") != NULL && !strstr(n, "dep"));
	free(n);
	n = bf_shvar_set(t, "GRUB_CMDLINE_LINUX", "console=hvc0", 1);
	CHECK(n && strstr(n, "GRUB_CMDLINE_LINUX=\"console=hvc0\"\n") != NULL);
	free(n);
	n = bf_shvar_set("X=1", "Y", "2", 0); /* no final newline */
	CHECK(n && strcmp(n, "X=1\nY=2\n") == 0);
	free(n);
	n = bf_shvar_set("", "Y", "2", 1);
	CHECK(n && strcmp(n, "Y=\"2\"\n") == 0);
	free(n);
}

static void modnames(void)
{
	char b[64];

	scimg_int_sg_modname("kernel/drivers/block/xen-blkfront.ko: kernel/drivers/xen/x.ko\nnext/line.ko", b, sizeof(b));
	CHECK(strcmp(b, "xen_blkfront") == 0);
	scimg_int_sg_modname("kernel/drivers/nvme/host/nvme.ko.xz", b, sizeof(b));
	CHECK(strcmp(b, "nvme") == 0);
	scimg_int_sg_modname("virtio_blk", b, sizeof(b));
	CHECK(strcmp(b, "virtio_blk") == 0);
	scimg_int_sg_modname("usr/lib/modules/6.1/kernel/drivers/ata/ahci.ko.zst\n", b, sizeof(b));
	CHECK(strcmp(b, "ahci") == 0);
	scimg_int_sg_modname("a/very-long-module-name-that-does-not-fit.ko", b, 8);
	CHECK(strlen(b) == 7);
}

static void put_entry(uint8_t *s, int i, uint8_t flag, uint8_t type, uint32_t start, uint32_t count)
{
	uint8_t *e = s + 446 + 16 * i;

	e[0] = flag;
	e[4] = type;
	for (int b = 0; b < 4; b++) {
		e[8 + b] = (uint8_t)(start >> (8 * b));
		e[12 + b] = (uint8_t)(count >> (8 * b));
	}
}

/* two zeroed sectors, the first with the MBR signature */
static void empty_mbr(uint8_t *s)
{
	memset(s, 0, 1024);
	s[510] = 0x55;
	s[511] = 0xAA;
}

static void parttable(void)
{
	const uint64_t size = UINT64_C(2) << 30; /* 4194304 sectors */
	uint8_t s[1024];

	/* an empty disk, a filesystem at sector 0 (old AMI): no */
	memset(s, 0, sizeof(s));
	CHECK(bf_partition_table_seen(s, size) == 0);
	memcpy(s + 3, "XFSB", 4);
	CHECK(bf_partition_table_seen(s, size) == 0);
	/* the signature alone, no partition: no */
	empty_mbr(s);
	CHECK(bf_partition_table_seen(s, size) == 0);
	/* one Linux partition from 1 MiB to the end: yes */
	put_entry(s, 0, 0x80, 0x83, 2048, 4194304 - 2048);
	CHECK(bf_partition_table_seen(s, size) == 1);
	/* reaching past the end, or starting at 0, or empty: no */
	put_entry(s, 0, 0x80, 0x83, 2048, 4194304);
	CHECK(bf_partition_table_seen(s, size) == 0);
	put_entry(s, 0, 0x00, 0x83, 0, 100);
	CHECK(bf_partition_table_seen(s, size) == 0);
	put_entry(s, 0, 0x00, 0x83, 2048, 0);
	CHECK(bf_partition_table_seen(s, size) == 0);
	put_entry(s, 0, 0x00, 0x83, 0xFFFFFFFFu, 0xFFFFFFFFu);
	CHECK(bf_partition_table_seen(s, size) == 0);
	/* a boot flag that is neither 0 nor 0x80 (a FAT boot sector's code): no */
	put_entry(s, 0, 0x00, 0x83, 2048, 4096);
	put_entry(s, 1, 0x12, 0x00, 0, 0);
	CHECK(bf_partition_table_seen(s, size) == 0);
	put_entry(s, 1, 0x00, 0x00, 0, 0);
	CHECK(bf_partition_table_seen(s, size) == 1);
	/* protective MBR: only with a GPT header in sector 1 */
	empty_mbr(s);
	put_entry(s, 0, 0x00, 0xEE, 1, 4194303);
	CHECK(bf_partition_table_seen(s, size) == 0);
	memcpy(s + 512, "EFI PART", 8);
	CHECK(bf_partition_table_seen(s, size) == 1);
	/* a disk smaller than its table says */
	empty_mbr(s);
	put_entry(s, 0, 0x00, 0x83, 2048, 2048);
	CHECK(bf_partition_table_seen(s, 2048 * 512) == 0);
	CHECK(bf_partition_table_seen(s, 4096 * 512) == 1);
}

int main(void)
{
	devnames();
	parttable();
	compression();
	shvars();
	modnames();
	UNIT_DONE();
}
