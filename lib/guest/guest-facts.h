/* guest-facts.h - facts.c: boot facts read through libguestfs (needs
 * <guestfs.h>; the pure parts are in guest.h). */
#ifndef SCIMG_GUEST_FACTS_H
#define SCIMG_GUEST_FACTS_H

#include <guestfs.h>
#include <json-c/json.h>

#include "guest.h"

struct sg_disk_facts {
	char *bootdisk;      /* whole disk for the boot code (/dev/sda) */
	int partitionless;   /* the root filesystem is that whole disk */
	char *boot_dev;      /* device of the filesystem holding /boot/grub */
	char *boot_fs;       /* its type (ext4, xfs, btrfs, ...) */
	int boot_xfs_v4;
	int boot_on_lvm, boot_on_other_volume;
	char *boot_subvol;   /* btrfs subvolume holding /boot ("@"), or NULL */
	char *esp_dev;       /* the EFI system partition, or NULL */
	char *esp_mp;        /* where fstab mounts it, or NULL */
	int uefi_fallback;   /* ESP_MP/EFI/BOOT/BOOTX64.EFI exists */
	int bios_code;       /* GRUB i386-pc boot code on BOOTDISK */
	int subvol_cfg_bridge; /* /boot/grub/grub.cfg at the btrfs top level */
};

/* After mounting the guest (ROOT = inspection root): 0, or -1 with the
 * libguestfs error. */
int scimg_int_sg_disk_facts(guestfs_h *g, const char *root, struct sg_disk_facts *df);
void scimg_int_sg_disk_facts_free(struct sg_disk_facts *df);
/* A deep copy of SRC into DST: 0, or -1 (out of memory, DST empty). */
int scimg_int_sg_disk_facts_dup(struct sg_disk_facts *dst, const struct sg_disk_facts *src);
char *scimg_int_sg_disk_of(guestfs_h *g, const char *dev);
int scimg_int_sg_bios_code(guestfs_h *g, const char *disk);
int scimg_int_sg_uefi_fallback(guestfs_h *g, const char *esp_mp);
/* ROOT ("btrfsvol:DEV/SUBVOL") has a GRUB configuration at the top level
 * of its btrfs filesystem (what pvgrub2 finds).  Mounts and unmounts:
 * call before mounting the guest. */
int scimg_int_sg_btrfs_top_cfg(guestfs_h *g, const char *root);
/* How many LUKS-encrypted volumes the disks hold (an OS on one is not
 * found by inspection: scimg has no key and says so). */
int scimg_int_sg_has_luks(guestfs_h *g);
/* The payload compression of the guest kernel VMLINUZ (kernel.c names). */
const char *scimg_int_sg_kernel_compression_of(guestfs_h *g, const char *vmlinuz);
/* The initramfs of kernel VER as distributions name it (Debian/Ubuntu
 * initrd.img-VER, Fedora/RHEL initramfs-VER.img, SUSE initrd-VER): the guest
 * path of the first regular file found (malloc'd), or NULL. */
char *scimg_int_sg_initrd_of(guestfs_h *g, const char *ver);
/* The disk facts into the rules' facts (the pointers stay DF's). */
void scimg_int_sg_facts_from_disk(struct sg_boot_facts *f, const struct sg_disk_facts *df);
/* The verdicts V[SG_NMETHODS] as the "boot-methods" JSON array
 * ({method, works, reason, basis: "predicted"}) both reports carry. */
json_object *scimg_int_sg_methods_json(const struct sg_verdict *v);
/* A grub.cfg path (linux/initrd argument) as a guest path that exists,
 * or NULL. */
char *scimg_int_sg_grub_path(guestfs_h *g, const struct sg_disk_facts *df, const char *gp);

#endif
