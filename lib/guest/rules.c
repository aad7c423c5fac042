/* rules.c - which boot methods work, from the facts of one guest.
 *
 * The only place that decides it: inject-drivers' report, check's findings
 * and the SCI descriptor all come from here.  Each rule names the facts it
 * rests on in the verdict's reason, and each is checked by a real boot in
 * tests/boot/ (the layouts of tests/fixtures/build-guest.sh).
 *
 * Xen PV, pygrub (Xen 4.17): dom0 opens the disk with libxenfsimage, which
 * reads MBR and GPT partitions (not LVM, md or LUKS) and ext2/3/4, FAT,
 * ISO 9660, ReiserFS, UFS, ZFS and XFS of the old v4 format only (XFS v5,
 * mkfs.xfs's default since 2015, and btrfs are not read), finds
 * /boot/grub/grub.cfg (or /grub/grub.cfg on a /boot partition) and loads
 * the kernel in dom0 (any compression libxenguest knows).
 *
 * Xen PV, pvgrub2 (GRUB 2.06, grub-x86_64-xen.bin): GRUB runs in the domU,
 * reads LVM, XFS v4/v5, btrfs and ext*, and searches each filesystem for
 * /boot/grub/grub.cfg or /grub/grub.cfg from its top: on btrfs with the
 * root (and /boot) in a subvolume the file is at /@/boot/grub/grub.cfg and
 * is not found (the domU stays silent) unless a file at the top level leads
 * there.  GRUB's Xen loader decompresses gzip and xz payloads (and loads an
 * uncompressed ELF); an LZ4 or zstd kernel fails with "not xen image".  It
 * has no linux16.
 *
 * HVM: GRUB's BIOS boot code (or the UEFI fallback loader on the ESP), then
 * the initramfs must hold the disk's driver with all its dependencies.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "scimg-int.h"
#include "guest.h"

const char *const scimg_int_sg_method_name[SG_NMETHODS] = {
	"xen-pv-pygrub", "xen-pv-pvgrub2", "hvm-bios-ide", "hvm-bios-sata",
	"hvm-bios-virtio-blk", "hvm-bios-virtio-scsi", "hvm-bios-nvme", "hvm-uefi",
};

static int streq(const char *a, const char *b)
{
	return a && b && strcmp(a, b) == 0;
}

/* The first of the drivers D[] (SG_NDRV-terminated) that is not usable at
 * boot, or SG_NDRV. */
static enum sg_drv first_unusable(const struct sg_boot_facts *f, const enum sg_drv *d)
{
	for (; *d != SG_NDRV; d++)
		if (!sg_usable(f->drv[*d]))
			return *d;
	return SG_NDRV;
}

static void why_driver(char *buf, size_t len, const struct sg_boot_facts *f, enum sg_drv d)
{
	const char *n = scimg_int_sg_drv_name[d];
	const char *k = f->kernel ? f->kernel : "?";

	switch (f->drv[d]) {
	case SG_ROOTFS:
		snprintf(buf, len, "kernel %s: %s is a module on the root filesystem only, "
			 "not in the initramfs", k, n);
		break;
	case SG_INCOMPLETE:
		snprintf(buf, len, "kernel %s: %s is in the initramfs without a module it "
			 "depends on (modules.dep)", k, n);
		break;
	default:
		snprintf(buf, len, "kernel %s has no %s driver%s", k, n,
			 d == SG_AHCI ? " (AHCI, CONFIG_SATA_AHCI)" : "");
		break;
	}
}

/* Why libxenfsimage cannot read the filesystem under /boot, or NULL. */
static const char *pygrub_fs_problem(const struct sg_boot_facts *f)
{
	static const char *const ok[] = { "ext2", "ext3", "ext4", "vfat", "msdos",
					  "iso9660", "reiserfs", "ufs", "zfs" };
	size_t i;

	if (f->boot_on_lvm)
		return "/boot is on an LVM logical volume; pygrub (Xen 4.17 libxenfsimage) reads "
		       "partitions only";
	if (f->boot_on_other_volume)
		return "/boot is on a RAID, encrypted or mapped volume; pygrub (Xen 4.17 "
		       "libxenfsimage) reads partitions only";
	if (!f->boot_fs)
		return NULL; /* unknown: decided by the other facts */
	if (streq(f->boot_fs, "xfs"))
		return f->boot_xfs_v4 ? NULL
				      : "/boot is on XFS v5 (CRC); pygrub (Xen 4.17 libxenfsimage) "
					"reads only the old XFS v4 format";
	if (streq(f->boot_fs, "btrfs"))
		return "/boot is on btrfs; pygrub (Xen 4.17 libxenfsimage) cannot read btrfs";
	for (i = 0; i < SCIMG_ARRAY_SIZE(ok); i++)
		if (streq(f->boot_fs, ok[i]))
			return NULL;
	return "pygrub (Xen 4.17 libxenfsimage) cannot read the filesystem under /boot";
}

static void set(struct sg_verdict *v, int works, const char *fmt, ...) SCIMG_PRINTF(3, 4);
static void set(struct sg_verdict *v, int works, const char *fmt, ...)
{
	va_list ap;

	v->works = works;
	va_start(ap, fmt);
	vsnprintf(v->reason, sizeof(v->reason), fmt, ap);
	va_end(ap);
}

static void xen(const struct sg_boot_facts *f, struct sg_verdict *v)
{
	static const enum sg_drv blk[] = { SG_XEN_BLKFRONT, SG_NDRV };
	const char *k = f->kernel ? f->kernel : "?", *c = f->compression ? f->compression : "unknown";
	const char *cfg = f->grub_cfg_path ? f->grub_cfg_path : "/boot/grub/grub.cfg";
	const char *fs;
	char d[256];
	int pvc = streq(c, "gzip") || streq(c, "xz") || streq(c, "none");

	if (first_unusable(f, blk) != SG_NDRV) {
		why_driver(d, sizeof(d), f, SG_XEN_BLKFRONT);
		set(&v[SG_XEN_PV_PYGRUB], 0, "%s", d);
		set(&v[SG_XEN_PV_PVGRUB2], 0, "%s", d);
		return;
	}
	if (!f->grub_cfg) {
		set(&v[SG_XEN_PV_PYGRUB], 0, "no GRUB 2 configuration with a linux entry (%s)", cfg);
		set(&v[SG_XEN_PV_PVGRUB2], 0, "no GRUB 2 configuration with a linux entry (%s)", cfg);
		return;
	}
	fs = pygrub_fs_problem(f);
	if (fs)
		set(&v[SG_XEN_PV_PYGRUB], 0, "%s", fs);
	else
		set(&v[SG_XEN_PV_PYGRUB], 1, "kernel %s: xen-blkfront in the initramfs; pygrub reads %s "
		    "from %s", k, cfg, f->boot_fs ? f->boot_fs : "/boot");

	if (!pvc)
		set(&v[SG_XEN_PV_PVGRUB2], 0, "kernel %s is %s-compressed: GRUB 2.06's pvgrub2 loads "
		    "only gzip or xz kernels (it fails with \"not xen image\"); use pygrub or a "
		    "direct kernel boot", k, c);
	else if (f->linux16)
		set(&v[SG_XEN_PV_PVGRUB2], 0, "%s: the default entry uses linux16/linuxefi, which "
		    "pvgrub2 does not have", cfg);
	else if (f->boot_subvol && *f->boot_subvol && !f->subvol_cfg_bridge)
		set(&v[SG_XEN_PV_PVGRUB2], 0, "/boot is inside btrfs subvolume '%s': pvgrub2 looks for "
		    "/boot/grub/grub.cfg at the top of the filesystem, where there is none",
		    f->boot_subvol);
	else
		set(&v[SG_XEN_PV_PVGRUB2], 1, "kernel %s is %s-compressed; pvgrub2 reads %s%s%s", k, c,
		    cfg, f->boot_subvol && *f->boot_subvol ? " through /boot/grub/grub.cfg at the top "
		    "of the btrfs filesystem" : "", f->boot_on_lvm ? " on LVM" : "");
}

static void hvm_bus(const struct sg_boot_facts *f, struct sg_verdict *v, const char *bus,
		    const enum sg_drv *need)
{
	enum sg_drv bad = first_unusable(f, need);
	char d[256];

	if (!f->bios_code) {
		set(v, 0, "%s", f->partitionless
			? "the root filesystem fills the whole disk (no partition table): no BIOS boot "
			  "code can be written; use --partition"
			: "no GRUB boot code for BIOS on the boot disk");
		return;
	}
	if (!f->grub_cfg) {
		set(v, 0, "no GRUB 2 configuration with a linux entry");
		return;
	}
	if (bad != SG_NDRV) {
		why_driver(d, sizeof(d), f, bad);
		set(v, 0, "%s", d);
		return;
	}
	set(v, 1, "GRUB BIOS boot code; kernel %s: the %s drivers in the initramfs or built in",
	    f->kernel ? f->kernel : "?", bus);
}

void scimg_int_sg_boot_rules(const struct sg_boot_facts *f, struct sg_verdict *v)
{
	static const enum sg_drv ide[] = { SG_ATA_PIIX, SG_SD_MOD, SG_NDRV };
	static const enum sg_drv sata[] = { SG_AHCI, SG_SD_MOD, SG_NDRV };
	static const enum sg_drv vblk[] = { SG_VIRTIO_BLK, SG_VIRTIO_PCI, SG_NDRV };
	static const enum sg_drv vscsi[] = { SG_VIRTIO_SCSI, SG_VIRTIO_PCI, SG_SD_MOD, SG_NDRV };
	static const enum sg_drv nvme[] = { SG_NVME, SG_NDRV };
	enum sg_drv bad;
	char d[256];

	memset(v, 0, SG_NMETHODS * sizeof(*v));
	xen(f, v);
	hvm_bus(f, &v[SG_HVM_BIOS_IDE], "IDE", ide);
	hvm_bus(f, &v[SG_HVM_BIOS_SATA], "SATA (AHCI)", sata);
	hvm_bus(f, &v[SG_HVM_BIOS_VIRTIO_BLK], "virtio-blk", vblk);
	hvm_bus(f, &v[SG_HVM_BIOS_VIRTIO_SCSI], "virtio-scsi", vscsi);
	hvm_bus(f, &v[SG_HVM_BIOS_NVME], "NVMe", nvme);

	/* UEFI firmware without boot entries (a new machine) starts the
	 * fallback loader; the disk is then virtio-blk or NVMe on clouds */
	bad = first_unusable(f, vblk);
	if (bad != SG_NDRV && first_unusable(f, nvme) == SG_NDRV)
		bad = SG_NDRV;
	if (!f->has_esp)
		set(&v[SG_HVM_UEFI], 0, "no EFI system partition");
	else if (!f->uefi_fallback)
		set(&v[SG_HVM_UEFI], 0, "no loader at the ESP's fallback path \\EFI\\BOOT\\BOOTX64.EFI: "
		    "firmware without a boot entry for this disk cannot start it");
	else if (!f->grub_cfg)
		set(&v[SG_HVM_UEFI], 0, "no GRUB 2 configuration with a linux entry");
	else if (bad != SG_NDRV) {
		why_driver(d, sizeof(d), f, bad);
		set(&v[SG_HVM_UEFI], 0, "%s", d);
	} else
		set(&v[SG_HVM_UEFI], 1, "\\EFI\\BOOT\\BOOTX64.EFI on the ESP; kernel %s: virtio-blk "
		    "or NVMe drivers in the initramfs", f->kernel ? f->kernel : "?");
}
