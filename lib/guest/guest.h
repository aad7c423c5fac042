/* guest.h - the one model of a Linux guest's boot facts, shared by
 * inject-drivers (lib/bootfix/) and check (lib/check/guest.c).
 *
 *   rules.c   the boot-method rules: facts in, "which boot methods work
 *             and why not" out.  Pure; tested table-driven
 *             (tests/unit/test-guest-rules.c) and by real boots
 *             (tests/boot/).  Nothing else decides whether a method works.
 *   moddep.c  modules.dep / modules.builtin: module names, dependencies;
 *             a driver counts as present in an initramfs only when every
 *             module it depends on is there too.  Pure.
 *   kernel.c  the compression of a bzImage's payload.  Pure.
 *   facts.c   the facts that need the guest's disk, through libguestfs:
 *             which disk holds the boot code, the filesystem and volume
 *             under /boot, the btrfs subvolume in GRUB's paths, the ESP's
 *             mount point and fallback loader, BIOS boot code.
 */
#ifndef SCIMG_GUEST_H
#define SCIMG_GUEST_H

#include <stddef.h>

/* Drivers a Supercloud guest needs, by module name ('-' and '_' alike). */
enum sg_drv {
	SG_XEN_BLKFRONT,
	SG_XEN_NETFRONT,
	SG_VIRTIO_BLK,
	SG_VIRTIO_SCSI,
	SG_VIRTIO_NET,
	SG_VIRTIO_PCI,
	SG_NVME,
	/* not requested by the user, but needed on emulated disks (added
	 * when the kernel has them) */
	SG_SD_MOD,
	SG_ATA_PIIX,
	SG_ATA_GENERIC,
	SG_AHCI,
	SG_NDRV
};
/* The first SG_NREQUIRED drivers are the ones every Supercloud image
 * must carry (check reports each one missing as an error). */
#define SG_NREQUIRED 7
extern const char *const scimg_int_sg_drv_name[SG_NDRV];

/* Where a driver of the default kernel is, for the first boot. */
enum sg_where {
	SG_MISSING = 0,    /* the kernel has no such driver */
	SG_ROOTFS,         /* a module on the root filesystem only */
	SG_INCOMPLETE,     /* in the initramfs, without a module it needs */
	SG_INITRAMFS,      /* it and all it depends on are in the initramfs */
	SG_BUILTIN,        /* built into the kernel */
};
/* "missing", "module", "initramfs-incomplete", "initramfs", "builtin" */
const char *scimg_int_sg_where_name(enum sg_where w);
static inline int sg_usable(enum sg_where w)
{
	return w == SG_INITRAMFS || w == SG_BUILTIN;
}

/* ---- moddep.c ---- */
/* "kernel/drivers/block/xen-blkfront.ko.xz" -> "xen_blkfront" */
void scimg_int_sg_modname(const char *path, char *out, size_t outlen);
/* A parsed modules.dep: module names and their dependencies (depmod
 * lists the whole closure on each line). */
struct sg_moddep;
struct sg_moddep *scimg_int_sg_moddep_parse(const char *text);
void scimg_int_sg_moddep_free(struct sg_moddep *m);
/* Module MOD is in modules.dep. */
int scimg_int_sg_moddep_has(const struct sg_moddep *m, const char *mod);
/* The dependencies of MOD (normalised names, NULL-terminated; the
 * array belongs to M), or NULL when MOD is not listed. */
const char *const *scimg_int_sg_moddep_deps(const struct sg_moddep *m, const char *mod);
/* A modules.builtin (or modules.dep) text names MOD. */
int scimg_int_sg_modlist_has(const char *text, const char *mod);
/* Where MOD is: BUILTIN (in builtin text), INITRAMFS when HAS_IN_INITRD(mod)
 * and every dependency is in the initramfs too, INCOMPLETE when a
 * dependency is not (its name, malloc'ed, in *MISSING_DEP if non-NULL),
 * ROOTFS when only modules.dep has it, MISSING otherwise.  DEP and BUILTIN
 * may be NULL. */
enum sg_where scimg_int_sg_where(const struct sg_moddep *dep, const char *builtin,
				 int (*in_initrd)(void *opaque, const char *mod),
				 void *opaque, const char *mod, char **missing_dep);

/* ---- kernel.c ---- */
/* Offset of the compressed payload in a bzImage (HEAD = its first bytes),
 * or -1. */
long long scimg_int_sg_bzimage_payload(const unsigned char *head, size_t len);
/* gzip, xz, lz4, zstd, bzip2, lzma, lzo, none (ELF), unknown */
const char *scimg_int_sg_kernel_compression(const unsigned char *head, size_t len,
					    const unsigned char *payload, size_t plen);

/* ---- rules.c ---- */
/* What decides the boot methods.  Every field is a fact about the image as
 * it will boot (after inject-drivers' changes). */
struct sg_boot_facts {
	const char *kernel;       /* version of the default kernel */
	const char *compression;  /* its vmlinuz payload (kernel.c names) */
	enum sg_where drv[SG_NDRV];
	int grub_cfg;             /* a grub.cfg with a linux entry for it */
	int linux16;              /* that entry uses linux16 / linuxefi */
	const char *grub_cfg_path;/* as the guest sees it, for reasons */
	/* /boot (the filesystem holding /boot/grub and the kernel) */
	const char *boot_fs;      /* ext4, ext3, ext2, xfs, btrfs, vfat, ... */
	int boot_xfs_v4;          /* XFS with the old (pre-CRC) format */
	int boot_on_lvm;          /* on an LVM logical volume */
	int boot_on_other_volume; /* on md RAID, LUKS, ... */
	const char *boot_subvol;  /* btrfs subvolume in GRUB's paths ("@") */
	int subvol_cfg_bridge;    /* a /boot/grub/grub.cfg at the btrfs top
				   * level leads to the subvolume's (pvgrub2) */
	int partitionless;        /* the root filesystem is the whole disk */
	int bios_code;            /* GRUB i386-pc boot code installed */
	int has_esp;              /* an EFI system partition */
	int uefi_fallback;        /* \EFI\BOOT\BOOTX64.EFI on it */
};

enum sg_method {
	SG_XEN_PV_PYGRUB,
	SG_XEN_PV_PVGRUB2,
	SG_HVM_BIOS_IDE,
	SG_HVM_BIOS_SATA,
	SG_HVM_BIOS_VIRTIO_BLK,
	SG_HVM_BIOS_VIRTIO_SCSI,
	SG_HVM_BIOS_NVME,
	SG_HVM_UEFI,
	SG_NMETHODS
};
extern const char *const scimg_int_sg_method_name[SG_NMETHODS];

struct sg_verdict {
	int works;
	char reason[384];   /* why it works (the deciding facts) or why not */
};

/* Apply the rules: V[SG_NMETHODS]. */
void scimg_int_sg_boot_rules(const struct sg_boot_facts *f, struct sg_verdict *v);

#endif
