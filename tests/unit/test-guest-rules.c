/* test-guest-rules.c - the guest model's pure parts, table-driven: the
 * boot-method rules (lib/guest/rules.c) on the layouts real guests have,
 * and modules.dep dependency closure (lib/guest/moddep.c). */
#include <stdlib.h>
#include <string.h>

#include "guest/guest.h"
#include "unit.h"

/* A fixed Debian guest on MBR + ext4: every driver in the initramfs. */
static void base(struct sg_boot_facts *f)
{
	int d;

	memset(f, 0, sizeof(*f));
	f->kernel = "6.1.0-28-amd64";
	f->compression = "xz";
	for (d = 0; d < SG_NDRV; d++)
		f->drv[d] = SG_INITRAMFS;
	f->grub_cfg = 1;
	f->grub_cfg_path = "/boot/grub/grub.cfg";
	f->boot_fs = "ext4";
	f->bios_code = 1;
}

enum { W = 1, F = 0, ANY = -1 };

struct row {
	const char *name;
	void (*edit)(struct sg_boot_facts *f);
	int want[SG_NMETHODS]; /* pygrub pvgrub2 ide sata vblk vscsi nvme uefi */
	const char *reason_has[SG_NMETHODS];
};

static void e_none(struct sg_boot_facts *f) { (void)f; }
static void e_lz4(struct sg_boot_facts *f) { f->compression = "lz4"; }
static void e_zstd(struct sg_boot_facts *f) { f->compression = "zstd"; }
static void e_xfs5(struct sg_boot_facts *f) { f->boot_fs = "xfs"; }
static void e_xfs4(struct sg_boot_facts *f) { f->boot_fs = "xfs"; f->boot_xfs_v4 = 1; }
static void e_btrfs(struct sg_boot_facts *f) { f->boot_fs = "btrfs"; f->boot_subvol = "@"; }
static void e_btrfs_top(struct sg_boot_facts *f) { f->boot_fs = "btrfs"; }
static void e_btrfs_bridge(struct sg_boot_facts *f)
{
	e_btrfs(f);
	f->subvol_cfg_bridge = 1;
}
static void e_lvm_boot(struct sg_boot_facts *f) { f->boot_on_lvm = 1; }
static void e_partless(struct sg_boot_facts *f) { f->bios_code = 0; f->partitionless = 1; }
static void e_noahci(struct sg_boot_facts *f) { f->drv[SG_AHCI] = SG_MISSING; }
static void e_vring(struct sg_boot_facts *f)
{
	f->drv[SG_VIRTIO_BLK] = SG_INCOMPLETE;
	f->drv[SG_VIRTIO_PCI] = SG_INCOMPLETE;
	f->drv[SG_VIRTIO_SCSI] = SG_INCOMPLETE;
	f->drv[SG_NVME] = SG_INCOMPLETE;
}
static void e_noblkfront(struct sg_boot_facts *f) { f->drv[SG_XEN_BLKFRONT] = SG_ROOTFS; }
static void e_uefi_only(struct sg_boot_facts *f)
{
	f->bios_code = 0;
	f->has_esp = 1;
	f->uefi_fallback = 1;
}
static void e_uefi_nofallback(struct sg_boot_facts *f)
{
	f->bios_code = 0;
	f->has_esp = 1;
}
/* build-layout.py's hybrid: GPT with a BIOS boot partition and an ESP */
static void e_hybrid(struct sg_boot_facts *f)
{
	f->has_esp = 1;
	f->uefi_fallback = 1;
}
static void e_hybrid_nofallback(struct sg_boot_facts *f) { f->has_esp = 1; }
/* build-layout.py's twokernel: the default is the cloud kernel (LZ4, no
 * AHCI); the claims are the default kernel's, not the other one's */
static void e_cloud_default(struct sg_boot_facts *f)
{
	f->kernel = "6.1.0-28-cloud-amd64";
	f->compression = "lz4";
	f->drv[SG_AHCI] = SG_MISSING;
}
static void e_nocfg(struct sg_boot_facts *f) { f->grub_cfg = 0; }
static void e_linux16(struct sg_boot_facts *f) { f->linux16 = 1; }

static const struct row rows[] = {
	{ "ext4 MBR", e_none, { W, W, W, W, W, W, W, F }, { [SG_HVM_UEFI] = "no EFI system partition" } },
	{ "LZ4 kernel", e_lz4, { W, F, W, W, W, W, W, F }, { [SG_XEN_PV_PVGRUB2] = "not xen image" } },
	{ "zstd kernel", e_zstd, { W, F, W, W, W, W, W, F }, { [SG_XEN_PV_PVGRUB2] = "zstd" } },
	{ "XFS v5 /boot", e_xfs5, { F, W, W, W, W, W, W, F }, { [SG_XEN_PV_PYGRUB] = "XFS v5" } },
	{ "XFS v4 /boot", e_xfs4, { W, W, W, W, W, W, W, F }, { NULL } },
	{ "btrfs @ root", e_btrfs, { F, F, W, W, W, W, W, F },
	  { [SG_XEN_PV_PYGRUB] = "cannot read btrfs", [SG_XEN_PV_PVGRUB2] = "subvolume '@'" } },
	{ "btrfs @ bridged", e_btrfs_bridge, { F, W, W, W, W, W, W, F }, { NULL } },
	{ "btrfs top level", e_btrfs_top, { F, W, W, W, W, W, W, F }, { NULL } },
	{ "/boot on LVM", e_lvm_boot, { F, W, W, W, W, W, W, F }, { [SG_XEN_PV_PYGRUB] = "LVM" } },
	{ "partitionless", e_partless, { W, W, F, F, F, F, F, F }, { [SG_HVM_BIOS_IDE] = "--partition" } },
	{ "no AHCI", e_noahci, { W, W, W, F, W, W, W, F }, { [SG_HVM_BIOS_SATA] = "no ahci" } },
	{ "virtio deps missing", e_vring, { W, W, W, W, F, F, F, F },
	  { [SG_HVM_BIOS_VIRTIO_BLK] = "depends on", [SG_HVM_BIOS_NVME] = "depends on" } },
	{ "blkfront on rootfs only", e_noblkfront, { F, F, W, W, W, W, W, F },
	  { [SG_XEN_PV_PYGRUB] = "root filesystem only" } },
	{ "UEFI only", e_uefi_only, { W, W, F, F, F, F, F, W }, { [SG_HVM_BIOS_IDE] = "no GRUB boot code" } },
	{ "UEFI, no fallback", e_uefi_nofallback, { W, W, F, F, F, F, F, F },
	  { [SG_HVM_UEFI] = "BOOTX64.EFI" } },
	{ "hybrid GPT, fixed", e_hybrid, { W, W, W, W, W, W, W, W }, { NULL } },
	{ "hybrid GPT, no fallback", e_hybrid_nofallback, { W, W, W, W, W, W, W, F },
	  { [SG_HVM_UEFI] = "BOOTX64.EFI" } },
	{ "cloud kernel default", e_cloud_default, { W, F, W, F, W, W, W, F },
	  { [SG_XEN_PV_PVGRUB2] = "lz4-compressed", [SG_HVM_BIOS_SATA] = "cloud-amd64 has no ahci" } },
	{ "no grub.cfg", e_nocfg, { F, F, F, F, F, F, F, F }, { [SG_XEN_PV_PYGRUB] = "no GRUB 2" } },
	{ "linux16", e_linux16, { W, F, W, W, W, W, W, F }, { [SG_XEN_PV_PVGRUB2] = "linux16" } },
};

static void rules(void)
{
	size_t i;
	int m;

	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct sg_boot_facts f;
		struct sg_verdict v[SG_NMETHODS];

		base(&f);
		rows[i].edit(&f);
		scimg_int_sg_boot_rules(&f, v);
		for (m = 0; m < SG_NMETHODS; m++) {
			if (rows[i].want[m] != ANY && v[m].works != rows[i].want[m]) {
				fprintf(stderr, "%s: %s: works=%d, want %d (%s)\n", rows[i].name,
					scimg_int_sg_method_name[m], v[m].works, rows[i].want[m], v[m].reason);
				unit_failures++;
			}
			/* every verdict says why */
			CHECK(v[m].reason[0] != '\0');
			if (rows[i].reason_has[m] && !strcasestr(v[m].reason, rows[i].reason_has[m])) {
				fprintf(stderr, "%s: %s: reason '%s' lacks '%s'\n", rows[i].name,
					scimg_int_sg_method_name[m], v[m].reason, rows[i].reason_has[m]);
				unit_failures++;
			}
		}
	}
}

static int in_set(void *opaque, const char *mod)
{
	const char *const *s;
	char m[128];

	scimg_int_sg_modname(mod, m, sizeof(m));
	for (s = opaque; *s; s++)
		if (strcmp(*s, m) == 0)
			return 1;
	return 0;
}

static void moddep(void)
{
	static const char dep[] =
		"kernel/drivers/block/virtio_blk.ko.xz: kernel/drivers/virtio/virtio.ko.xz "
		"kernel/drivers/virtio/virtio_ring.ko.xz\n"
		"kernel/drivers/virtio/virtio_pci.ko.xz: kernel/drivers/virtio/virtio_pci_legacy_dev.ko.xz "
		"kernel/drivers/virtio/virtio_pci_modern_dev.ko.xz kernel/drivers/virtio/virtio.ko.xz "
		"kernel/drivers/virtio/virtio_ring.ko.xz\n"
		"kernel/drivers/nvme/host/nvme.ko.xz: kernel/drivers/nvme/host/nvme-core.ko.xz\n"
		"kernel/drivers/nvme/host/nvme-core.ko.xz:\n"
		"kernel/drivers/block/xen-blkfront.ko.xz:\n"
		"no colon on this line\n"
		"kernel/drivers/virtio/virtio.ko.xz:\n";
	static const char builtin[] = "kernel/drivers/ata/ahci.ko\n";
	const char *dracut_omitted[] = { "virtio_blk", "virtio_pci", "nvme", "xen_blkfront", NULL };
	const char *complete[] = { "virtio_blk", "virtio", "virtio_ring", "nvme", "nvme_core",
				   "xen_blkfront", NULL };
	struct sg_moddep *m = scimg_int_sg_moddep_parse(dep);
	const char *const *d;
	char *miss = NULL;

	CHECK(m != NULL);
	CHECK(scimg_int_sg_moddep_has(m, "xen-blkfront"));
	CHECK(scimg_int_sg_moddep_has(m, "nvme_core"));
	CHECK(!scimg_int_sg_moddep_has(m, "no"));
	d = scimg_int_sg_moddep_deps(m, "virtio_pci");
	CHECK(d && d[0] && strcmp(d[0], "virtio_pci_legacy_dev") == 0 && d[3] && !d[4]);
	d = scimg_int_sg_moddep_deps(m, "nvme-core");
	CHECK(d && !d[0]);
	/* dracut with omit_drivers="virtio nvme": the drivers went in, their
	 * dependencies did not */
	CHECK(scimg_int_sg_where(m, builtin, in_set, dracut_omitted, "virtio_blk", &miss) == SG_INCOMPLETE);
	CHECK(miss && strcmp(miss, "virtio") == 0);
	free(miss);
	CHECK(scimg_int_sg_where(m, builtin, in_set, dracut_omitted, "nvme", &miss) == SG_INCOMPLETE);
	CHECK(miss && strcmp(miss, "nvme_core") == 0);
	free(miss);
	CHECK(scimg_int_sg_where(m, builtin, in_set, dracut_omitted, "xen-blkfront", NULL) == SG_INITRAMFS);
	CHECK(scimg_int_sg_where(m, builtin, in_set, complete, "virtio_blk", &miss) == SG_INITRAMFS && !miss);
	CHECK(scimg_int_sg_where(m, builtin, in_set, complete, "nvme", NULL) == SG_INITRAMFS);
	CHECK(scimg_int_sg_where(m, builtin, in_set, complete, "virtio_pci", NULL) == SG_ROOTFS);
	CHECK(scimg_int_sg_where(m, builtin, in_set, complete, "ahci", NULL) == SG_BUILTIN);
	CHECK(scimg_int_sg_where(m, builtin, in_set, complete, "virtio_scsi", NULL) == SG_MISSING);
	CHECK(scimg_int_sg_where(NULL, NULL, NULL, NULL, "nvme", NULL) == SG_MISSING);
	scimg_int_sg_moddep_free(m);
	m = scimg_int_sg_moddep_parse("");
	CHECK(m && !scimg_int_sg_moddep_has(m, "x"));
	scimg_int_sg_moddep_free(m);
	CHECK(strcmp(scimg_int_sg_where_name(SG_INCOMPLETE), "initramfs-incomplete") == 0);
}

int main(void)
{
	rules();
	moddep();
	UNIT_DONE();
}
