/* test-boot-list.c - scimg_boot_parse_list(), the one parser of boot lists
 * (boot-test --bus/--firmware/--xen/--blanket-firmware, check --boot,
 * inject-drivers --verify, convert -O sci -o verify=): names per kind,
 * "all" per kind, separators, empty items, unknown and disallowed names,
 * messages that fit the buffer given. */
#include <errno.h>
#include <string.h>

#include "scimg.h"
#include "unit.h"

#define ALLK (SCIMG_BOOT_LIST_BUS | SCIMG_BOOT_LIST_FIRMWARE | SCIMG_BOOT_LIST_XEN)

static int parse(const char *s, const char *seps, unsigned kinds, unsigned xa, unsigned *b,
		 unsigned *f, unsigned *x, char *err, size_t errlen)
{
	*b = *f = *x = 0xdead;
	return scimg_boot_parse_list(s, seps, kinds, xa, b, f, x, err, errlen);
}

int main(void)
{
	unsigned b, f, x;
	char err[400], tiny[12];

	/* every kind at once, with ',' */
	CHECK(parse("nvme,uefi,pygrub,ide", ",", ALLK, ~0u, &b, &f, &x, err, sizeof(err)) == 0);
	CHECK(b == (SCIMG_BOOT_BUS_NVME | SCIMG_BOOT_BUS_IDE));
	CHECK(f == SCIMG_BOOT_FW_UEFI);
	CHECK(x == SCIMG_BOOT_XEN_PYGRUB);
	/* "all" with buses is every bus; "xen" is pygrub and pvgrub2 */
	CHECK(parse("all+xen", "+,", ALLK, ~0u, &b, &f, &x, err, sizeof(err)) == 0);
	CHECK(b == SCIMG_BOOT_BUS_ALL && f == 0);
	CHECK(x == (SCIMG_BOOT_XEN_PYGRUB | SCIMG_BOOT_XEN_PVGRUB2));
	/* "all" of one kind */
	CHECK(parse("all", ",", SCIMG_BOOT_LIST_FIRMWARE, ~0u, &b, &f, &x, err, sizeof(err)) == 0);
	CHECK(f == (SCIMG_BOOT_FW_BIOS | SCIMG_BOOT_FW_UEFI));
	CHECK(b == 0xdead && x == 0xdead); /* not asked for: untouched */
	CHECK(parse("all", ",", SCIMG_BOOT_LIST_XEN, ~0u, &b, &f, &x, err, sizeof(err)) == 0);
	CHECK(x == (SCIMG_BOOT_XEN_PYGRUB | SCIMG_BOOT_XEN_PVGRUB2));
	CHECK(parse("direct,sci", ",", SCIMG_BOOT_LIST_XEN, ~0u, &b, &f, &x, err, sizeof(err)) == 0);
	CHECK(x == (SCIMG_BOOT_XEN_DIRECT | SCIMG_BOOT_XEN_SCI));
	/* empty items are skipped; a list of nothing is an error */
	CHECK(parse(",,nvme,,", ",", ALLK, ~0u, &b, &f, &x, err, sizeof(err)) == 0);
	CHECK(b == SCIMG_BOOT_BUS_NVME);
	CHECK(parse(",", ",", SCIMG_BOOT_LIST_BUS, ~0u, &b, &f, &x, err, sizeof(err)) == -EINVAL);
	CHECK(!strcmp(err, "empty list"));
	CHECK(parse("", ",", SCIMG_BOOT_LIST_BUS, ~0u, &b, &f, &x, err, sizeof(err)) == -EINVAL);
	CHECK(parse(NULL, ",", SCIMG_BOOT_LIST_BUS, ~0u, &b, &f, &x, err, sizeof(err)) == -EINVAL);
	/* a name of another kind is unknown; the message lists the known ones */
	CHECK(parse("virtio-blk,bios", ",", SCIMG_BOOT_LIST_BUS, ~0u, &b, &f, &x, err, sizeof(err)) == -EINVAL);
	CHECK(!strcmp(err, "unknown 'bios' (expected ide, sata, virtio-blk, virtio-scsi, nvme, all)"));
	CHECK(b == 0xdead); /* nothing written on error */
	CHECK(parse("grub4dos", ",", SCIMG_BOOT_LIST_XEN, ~0u, &b, &f, &x, err, sizeof(err)) == -EINVAL);
	CHECK(!strcmp(err, "unknown 'grub4dos' (expected pygrub, pvgrub2, direct, sci, xen, all)"));
	/* Xen loaders outside XEN_ALLOWED are unknown (verify= has no direct, sci) */
	CHECK(parse("nvme+direct", "+,", ALLK, SCIMG_BOOT_XEN_PYGRUB | SCIMG_BOOT_XEN_PVGRUB2,
		    &b, &f, &x, err, sizeof(err)) == -EINVAL);
	CHECK(!strcmp(err, "unknown 'direct' (expected ide, sata, virtio-blk, virtio-scsi, nvme, all, "
			   "bios, uefi, pygrub, pvgrub2, xen)"));
	/* a prefix or a longer name is not a name */
	CHECK(parse("nvm", ",", ALLK, ~0u, &b, &f, &x, err, sizeof(err)) == -EINVAL);
	CHECK(parse("nvmex", ",", ALLK, ~0u, &b, &f, &x, err, sizeof(err)) == -EINVAL);
	CHECK(parse("NVME", ",", ALLK, ~0u, &b, &f, &x, err, sizeof(err)) == -EINVAL);
	/* a separator not given is part of the name */
	CHECK(parse("nvme+ide", ",", ALLK, ~0u, &b, &f, &x, err, sizeof(err)) == -EINVAL);
	CHECK(!strncmp(err, "unknown 'nvme+ide'", 18));
	/* a long unknown name is cut in the message; a small buffer stays terminated */
	{
		char longname[300];

		memset(longname, 'a', sizeof(longname) - 1);
		longname[sizeof(longname) - 1] = '\0';
		CHECK(parse(longname, ",", ALLK, ~0u, &b, &f, &x, err, sizeof(err)) == -EINVAL);
		CHECK(strlen(err) < sizeof(err) && strlen(err) < 300);
		CHECK(parse(longname, ",", ALLK, ~0u, &b, &f, &x, tiny, sizeof(tiny)) == -EINVAL);
		CHECK(strlen(tiny) < sizeof(tiny));
	}
	/* bad arguments */
	CHECK(parse("nvme", ",", 0, ~0u, &b, &f, &x, err, sizeof(err)) == -EINVAL);
	CHECK(parse("nvme", "", ALLK, ~0u, &b, &f, &x, err, sizeof(err)) == -EINVAL);
	CHECK(scimg_boot_parse_list("nvme", ",", SCIMG_BOOT_LIST_BUS | SCIMG_BOOT_LIST_XEN, ~0u, &b,
				    NULL, NULL, err, sizeof(err)) == -EINVAL);
	UNIT_DONE();
}
