/* facts.c - the boot facts that need the guest's disk, read through an
 * open libguestfs handle whose guest filesystems are mounted (by
 * inject-drivers read-write, by check read-only).  Nothing here writes. */
#include <guestfs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "scimg-int.h"
#include "guest.h"
#include "guest-facts.h"

#define ESP_TYPE "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
#define BIOS_BOOT_TYPE "21686148-6449-6E6F-744E-656564454649"


void scimg_int_sg_disk_facts_free(struct sg_disk_facts *d)
{
	free(d->bootdisk);
	free(d->boot_dev);
	free(d->boot_fs);
	free(d->boot_subvol);
	free(d->esp_dev);
	free(d->esp_mp);
	memset(d, 0, sizeof(*d));
}

static int dup_str(char **dst, const char *src)
{
	*dst = src ? strdup(src) : NULL;
	return src && !*dst ? -1 : 0;
}

int scimg_int_sg_disk_facts_dup(struct sg_disk_facts *dst, const struct sg_disk_facts *src)
{
	*dst = *src;
	dst->bootdisk = dst->boot_dev = dst->boot_fs = dst->boot_subvol = NULL;
	dst->esp_dev = dst->esp_mp = NULL;
	if (dup_str(&dst->bootdisk, src->bootdisk) < 0 || dup_str(&dst->boot_dev, src->boot_dev) < 0 ||
	    dup_str(&dst->boot_fs, src->boot_fs) < 0 ||
	    dup_str(&dst->boot_subvol, src->boot_subvol) < 0 ||
	    dup_str(&dst->esp_dev, src->esp_dev) < 0 || dup_str(&dst->esp_mp, src->esp_mp) < 0) {
		scimg_int_sg_disk_facts_free(dst);
		return -1;
	}
	return 0;
}

/* DEV is a device of the appliance (a disk, partition, LV or md device).
 * (guestfs_is_blockdev looks in the mounted guest's /dev, not there.) */
static int appliance_dev(guestfs_h *g, const char *dev)
{
	char **l[4];
	size_t i, k;
	int found = 0;

	l[0] = guestfs_list_devices(g);
	l[1] = guestfs_list_partitions(g);
	l[2] = guestfs_lvs(g);
	l[3] = guestfs_list_md_devices(g);
	for (k = 0; k < 4; k++) {
		for (i = 0; l[k] && l[k][i] && !found; i++)
			found = strcmp(l[k][i], dev) == 0;
		scimg_int_strv_free(l[k]);
	}
	return found;
}

/* "btrfsvol:/dev/sda2/@/sub" -> device "/dev/sda2" and subvolume "@/sub". */
static char *btrfsvol_split(guestfs_h *g, const char *m, char **subvol)
{
	const char *p = m + strlen("btrfsvol:"), *s;

	*subvol = NULL;
	for (s = strchr(p + strlen("/dev/"), '/'); s; s = strchr(s + 1, '/')) {
		char *dev = strndup(p, (size_t)(s - p));
		if (dev && appliance_dev(g, dev)) {
			*subvol = strdup(s + 1);
			return dev;
		}
		free(dev);
	}
	return strdup(p);
}

/* The whole disk that holds device DEV (a partition, an LVM logical volume,
 * a btrfs subvolume "btrfsvol:..."), or a copy of DEV when DEV is a whole
 * disk; NULL when not found. */
char *scimg_int_sg_disk_of(guestfs_h *g, const char *dev)
{
	char *d = NULL, *sub = NULL;

	guestfs_push_error_handler(g, NULL, NULL);
	if (strncmp(dev, "btrfsvol:", 9) == 0) {
		char *b = btrfsvol_split(g, dev, &sub);
		free(sub);
		d = b ? scimg_int_sg_disk_of(g, b) : NULL;
		free(b);
	} else if (guestfs_is_lv(g, dev) == 1) {
		/* /dev/VG/LV: the disk of its VG's first physical volume */
		char *lv = guestfs_lvm_canonical_lv_name(g, dev), *vg = NULL, **uu = NULL;
		struct guestfs_lvm_pv_list *pvs = NULL;
		size_t i;

		if (lv && strncmp(lv, "/dev/", 5) == 0 && strchr(lv + 5, '/'))
			vg = strndup(lv + 5, (size_t)(strchr(lv + 5, '/') - (lv + 5)));
		if (vg)
			uu = guestfs_vgpvuuids(g, vg);
		if (uu && uu[0])
			pvs = guestfs_pvs_full(g);
		for (i = 0; pvs && i < pvs->len && !d; i++)
			if (strlen(uu[0]) >= 32 && memcmp(pvs->val[i].pv_uuid, uu[0], 32) == 0)
				d = scimg_int_sg_disk_of(g, pvs->val[i].pv_name);
		if (pvs)
			guestfs_free_lvm_pv_list(pvs);
		scimg_int_strv_free(uu);
		free(vg);
		free(lv);
	} else {
		d = guestfs_part_to_dev(g, dev);
		if (!d) {
			char **devs = guestfs_list_devices(g);
			size_t i;
			for (i = 0; devs && devs[i]; i++)
				if (strcmp(devs[i], dev) == 0)
					d = strdup(dev);
			scimg_int_strv_free(devs);
		}
	}
	guestfs_pop_error_handler(g);
	return d;
}

/* The fstab entry (inspection's mount points) that holds PATH: the
 * longest mount point that is a prefix of it. */
static int holder(char **mp, const char *path, const char **mnt, const char **dev)
{
	size_t i, best = 0;
	int found = 0;

	for (i = 0; mp && mp[i] && mp[i + 1]; i += 2) {
		size_t l = strlen(mp[i]);
		int pre = strcmp(mp[i], "/") == 0 ||
			  (strncmp(path, mp[i], l) == 0 && (path[l] == '/' || path[l] == '\0'));
		if (pre && (!found || l > best)) {
			best = l;
			*mnt = mp[i];
			*dev = mp[i + 1];
			found = 1;
		}
	}
	return found;
}

static int xfs_v4(guestfs_h *g, const char *dev)
{
	size_t n = 0;
	char *sb = guestfs_pread_device(g, dev, 512, 0, &n);
	int v4 = sb && n >= 102 && memcmp(sb, "XFSB", 4) == 0 &&
		 ((((unsigned char)sb[100] << 8) | (unsigned char)sb[101]) & 0xf) == 4;

	free(sb);
	return v4;
}

/* Whether DISK's boot code can start the guest from BIOS.  GRUB's boot.img
 * (it carries the string "GRUB") needs its core.img: embedded after the
 * MBR (sector 1 not blank) or in a BIOS boot partition on GPT, and the
 * guest's /boot/grub/i386-pc modules.  Any other MBR code (syslinux, a
 * generic MBR) chains to the active partition's boot sector, which must
 * carry the 0x55AA signature.  A generic MBR in front of a partition
 * without boot code (what partitioning tools write) boots nothing. */
static int blank(const char *b, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (b[i])
			return 0;
	return 1;
}

static int signed_sector(const char *b, size_t n)
{
	return b && n >= 512 && (unsigned char)b[510] == 0x55 && (unsigned char)b[511] == 0xaa;
}

static int active_vbr(guestfs_h *g, const char *disk)
{
	char **parts = guestfs_list_partitions(g);
	size_t j, n;
	int ok = 0;

	for (j = 0; parts && parts[j] && !ok; j++) {
		char *pd = guestfs_part_to_dev(g, parts[j]);
		int num = guestfs_part_to_partnum(g, parts[j]);
		if (pd && strcmp(pd, disk) == 0 && num > 0 && guestfs_part_get_bootable(g, disk, num) == 1) {
			char *vbr = guestfs_pread_device(g, parts[j], 512, 0, &n);
			ok = signed_sector(vbr, n) && !blank(vbr, 440);
			free(vbr);
		}
		free(pd);
	}
	scimg_int_strv_free(parts);
	return ok;
}

int scimg_int_sg_bios_code(guestfs_h *g, const char *disk)
{
	size_t n = 0, i;
	char *mbr, *pt = NULL, *s1 = NULL;
	int ok = 0, grub;

	guestfs_push_error_handler(g, NULL, NULL);
	mbr = guestfs_pread_device(g, disk, 512, 0, &n);
	if (!signed_sector(mbr, n) || blank(mbr, 440))
		goto out;
	grub = memmem(mbr, 440, "GRUB", 4) != NULL;
	pt = guestfs_part_get_parttype(g, disk);
	if (grub && pt && strcmp(pt, "gpt") == 0) {
		/* GRUB for BIOS on GPT lives in a BIOS boot partition */
		struct guestfs_partition_list *pl = guestfs_part_list(g, disk);
		for (i = 0; pl && i < pl->len && !ok; i++) {
			char *ty = guestfs_part_get_gpt_type(g, disk, pl->val[i].part_num);
			ok = ty && strcasecmp(ty, BIOS_BOOT_TYPE) == 0;
			free(ty);
		}
		if (pl)
			guestfs_free_partition_list(pl);
	} else if (grub) {
		/* core.img embedded in the gap after the MBR */
		s1 = guestfs_pread_device(g, disk, 512, 512, &n);
		ok = s1 && n == 512 && !blank(s1, 512);
	} else {
		ok = active_vbr(g, disk);
	}
	if (ok && grub &&
	    guestfs_is_dir_opts(g, "/boot/grub/i386-pc", GUESTFS_IS_DIR_OPTS_FOLLOWSYMLINKS, 1, -1) != 1 &&
	    guestfs_is_dir_opts(g, "/boot/grub2/i386-pc", GUESTFS_IS_DIR_OPTS_FOLLOWSYMLINKS, 1, -1) != 1)
		ok = 0;
out:
	guestfs_pop_error_handler(g);
	free(mbr);
	free(s1);
	free(pt);
	return ok;
}

/* An ESP by GPT type on DISK (when fstab does not mount one). */
static char *esp_by_type(guestfs_h *g, const char *disk)
{
	struct guestfs_partition_list *pl;
	char *pt, *esp = NULL;
	size_t i;

	pt = guestfs_part_get_parttype(g, disk);
	if (!pt || strcmp(pt, "gpt") != 0) {
		free(pt);
		return NULL;
	}
	free(pt);
	pl = guestfs_part_list(g, disk);
	for (i = 0; pl && i < pl->len && !esp; i++) {
		char *ty = guestfs_part_get_gpt_type(g, disk, pl->val[i].part_num);
		if (ty && strcasecmp(ty, ESP_TYPE) == 0) {
			char **parts = guestfs_list_partitions(g);
			size_t j;
			for (j = 0; parts && parts[j] && !esp; j++) {
				char *pd = guestfs_part_to_dev(g, parts[j]);
				if (pd && strcmp(pd, disk) == 0 &&
				    guestfs_part_to_partnum(g, parts[j]) == pl->val[i].part_num)
					esp = strdup(parts[j]);
				free(pd);
			}
			scimg_int_strv_free(parts);
		}
		free(ty);
	}
	if (pl)
		guestfs_free_partition_list(pl);
	return esp;
}

int scimg_int_sg_uefi_fallback(guestfs_h *g, const char *esp_mp)
{
	char p[4096], *cs;
	int ok = 0;

	if (!esp_mp)
		return 0;
	snprintf(p, sizeof(p), "%s/EFI/BOOT/BOOTX64.EFI", strcmp(esp_mp, "/") ? esp_mp : "");
	guestfs_push_error_handler(g, NULL, NULL);
	cs = guestfs_case_sensitive_path(g, p);
	if (cs && guestfs_is_file_opts(g, cs, GUESTFS_IS_FILE_OPTS_FOLLOWSYMLINKS, 1, -1) == 1)
		ok = 1;
	guestfs_pop_error_handler(g);
	free(cs);
	return ok;
}

int scimg_int_sg_disk_facts(guestfs_h *g, const char *root, struct sg_disk_facts *df)
{
	char **mp;
	const char *bmnt = NULL, *bdev = NULL;
	size_t i;

	memset(df, 0, sizeof(*df));
	mp = guestfs_inspect_get_mountpoints(g, root);
	if (!mp)
		return -1;
	guestfs_push_error_handler(g, NULL, NULL);
	/* "/" is the inspected root itself */
	for (i = 0; mp[i] && mp[i + 1]; i += 2)
		if (strcmp(mp[i], "/") == 0) {
			free(mp[i + 1]);
			mp[i + 1] = strdup(root);
		}
	if (!holder(mp, "/boot/grub", &bmnt, &bdev))
		bdev = root;
	if (bdev) {
		if (strncmp(bdev, "btrfsvol:", 9) == 0) {
			char *sub = NULL;
			df->boot_dev = btrfsvol_split(g, bdev, &sub);
			/* GRUB's paths are from the top of the btrfs tree */
			if (sub && *sub && strcmp(sub, "/") != 0)
				df->boot_subvol = sub;
			else
				free(sub);
		} else {
			df->boot_dev = strdup(bdev);
		}
		df->boot_fs = df->boot_dev ? guestfs_vfs_type(g, df->boot_dev) : NULL;
		if (df->boot_fs && !*df->boot_fs) {
			free(df->boot_fs);
			df->boot_fs = NULL;
		}
		if (df->boot_fs && strcmp(df->boot_fs, "xfs") == 0)
			df->boot_xfs_v4 = xfs_v4(g, df->boot_dev);
		if (df->boot_dev && guestfs_is_lv(g, df->boot_dev) == 1)
			df->boot_on_lvm = 1;
		else if (df->boot_dev && (strncmp(df->boot_dev, "/dev/md", 7) == 0 ||
					  strncmp(df->boot_dev, "/dev/mapper/", 12) == 0 ||
					  strncmp(df->boot_dev, "/dev/dm-", 8) == 0))
			df->boot_on_other_volume = 1;
	}
	/* the boot code goes on the disk that holds /boot (else root) */
	df->bootdisk = scimg_int_sg_disk_of(g, bdev ? bdev : root);
	if (!df->bootdisk)
		df->bootdisk = scimg_int_sg_disk_of(g, root);
	df->partitionless = df->bootdisk && strcmp(df->bootdisk, root) == 0;

	for (i = 0; mp[i] && mp[i + 1]; i += 2)
		if (strcmp(mp[i], "/boot/efi") == 0 || strcmp(mp[i], "/efi") == 0 ||
		    strcasecmp(mp[i], "/boot/EFI") == 0) {
			free(df->esp_dev);
			free(df->esp_mp);
			df->esp_dev = strdup(mp[i + 1]);
			df->esp_mp = strdup(mp[i]);
		}
	if (!df->esp_dev && df->bootdisk && !df->partitionless)
		df->esp_dev = esp_by_type(g, df->bootdisk);
	df->uefi_fallback = scimg_int_sg_uefi_fallback(g, df->esp_mp);
	df->bios_code = df->bootdisk && !df->partitionless &&
			scimg_int_sg_bios_code(g, df->bootdisk);
	guestfs_pop_error_handler(g);
	scimg_int_strv_free(mp);
	return 0;
}

/* Resolve a kernel path of a grub.cfg entry to the guest's path: GRUB's
 * paths are relative to the filesystem holding them (/vmlinuz-X when /boot
 * is a partition; /@/boot/vmlinuz-X in btrfs subvolume @). */
char *scimg_int_sg_grub_path(guestfs_h *g, const struct sg_disk_facts *df, const char *gp)
{
	char p[4096];
	const char *rel = gp;
	size_t sl;

	if (!gp || gp[0] != '/')
		return NULL;
	/* (hd0,msdos1)/vmlinuz: drop a GRUB device */
	if (df->boot_subvol) {
		sl = strlen(df->boot_subvol);
		if (strncmp(rel + 1, df->boot_subvol, sl) == 0 && rel[1 + sl] == '/')
			rel += 1 + sl;
	}
	guestfs_push_error_handler(g, NULL, NULL);
	snprintf(p, sizeof(p), "%s", rel);
	if (guestfs_is_file_opts(g, p, GUESTFS_IS_FILE_OPTS_FOLLOWSYMLINKS, 1, -1) != 1) {
		snprintf(p, sizeof(p), "/boot%s", rel);
		if (guestfs_is_file_opts(g, p, GUESTFS_IS_FILE_OPTS_FOLLOWSYMLINKS, 1, -1) != 1)
			p[0] = '\0';
	}
	guestfs_pop_error_handler(g);
	return p[0] ? strdup(p) : NULL;
}

int scimg_int_sg_btrfs_top_cfg(guestfs_h *g, const char *root)
{
	char *sub = NULL, *dev;
	int found = 0;

	if (strncmp(root, "btrfsvol:", 9) != 0)
		return 0;
	dev = btrfsvol_split(g, root, &sub);
	free(sub);
	if (!dev)
		return 0;
	guestfs_push_error_handler(g, NULL, NULL);
	if (guestfs_mount_options(g, "ro,subvolid=5", dev, "/") == 0) {
		found = guestfs_is_file_opts(g, "/boot/grub/grub.cfg", GUESTFS_IS_FILE_OPTS_FOLLOWSYMLINKS, 0, -1) == 1 ||
			guestfs_is_file_opts(g, "/grub/grub.cfg", GUESTFS_IS_FILE_OPTS_FOLLOWSYMLINKS, 0, -1) == 1;
		guestfs_umount_all(g);
	}
	guestfs_pop_error_handler(g);
	free(dev);
	return found;
}

void scimg_int_sg_facts_from_disk(struct sg_boot_facts *f, const struct sg_disk_facts *df)
{
	f->boot_fs = df->boot_fs;
	f->boot_xfs_v4 = df->boot_xfs_v4;
	f->boot_on_lvm = df->boot_on_lvm;
	f->boot_on_other_volume = df->boot_on_other_volume;
	f->boot_subvol = df->boot_subvol;
	f->subvol_cfg_bridge = df->subvol_cfg_bridge;
	f->partitionless = df->partitionless;
	f->bios_code = df->bios_code;
	f->has_esp = df->esp_dev != NULL;
	f->uefi_fallback = df->uefi_fallback;
}

json_object *scimg_int_sg_methods_json(const struct sg_verdict *v)
{
	json_object *arr = json_object_new_array();
	int m;

	for (m = 0; arr && m < SG_NMETHODS; m++) {
		json_object *o = json_object_new_object();
		json_object_object_add(o, "method", json_object_new_string(scimg_int_sg_method_name[m]));
		json_object_object_add(o, "works", json_object_new_boolean(v[m].works));
		json_object_object_add(o, "reason", json_object_new_string(v[m].reason));
		/* the rules predict; boot-test and inject-drivers --verify measure */
		json_object_object_add(o, "basis", json_object_new_string("predicted"));
		json_object_array_add(arr, o);
	}
	return arr;
}

int scimg_int_sg_has_luks(guestfs_h *g)
{
	/* list_filesystems leaves LUKS volumes out: ask each device */
	char **lists[2];
	size_t i, l;
	int n = 0;

	guestfs_push_error_handler(g, NULL, NULL);
	lists[0] = guestfs_list_devices(g);
	lists[1] = guestfs_list_partitions(g);
	for (l = 0; l < 2; l++)
		for (i = 0; lists[l] && lists[l][i]; i++) {
			char *t = guestfs_vfs_type(g, lists[l][i]);
			if (t && strcmp(t, "crypto_LUKS") == 0)
				n++;
			free(t);
		}
	guestfs_pop_error_handler(g);
	scimg_int_strv_free(lists[0]);
	scimg_int_strv_free(lists[1]);
	return n;
}

const char *scimg_int_sg_kernel_compression_of(guestfs_h *g, const char *vmlinuz)
{
	size_t hl = 0, pl = 0;
	char *head = guestfs_pread(g, vmlinuz, 4096, 0, &hl), *pay = NULL;
	long long off = head ? scimg_int_sg_bzimage_payload((unsigned char *)head, hl) : -1;
	const char *c;

	if (off > 0)
		pay = guestfs_pread(g, vmlinuz, 16, off, &pl);
	c = scimg_int_sg_kernel_compression((unsigned char *)head, head ? hl : 0,
					    (unsigned char *)pay, pay ? pl : 0);
	free(head);
	free(pay);
	return c;
}

char *scimg_int_sg_initrd_of(guestfs_h *g, const char *ver)
{
	static const char *const pat[] = { "/boot/initrd.img-%s", "/boot/initramfs-%s.img",
					   "/boot/initrd-%s", "/boot/initrd-%s.img" };
	char p[512];
	size_t i;

	for (i = 0; i < SCIMG_ARRAY_SIZE(pat); i++) {
		snprintf(p, sizeof(p), pat[i], ver);
		if (guestfs_is_file_opts(g, p, GUESTFS_IS_FILE_OPTS_FOLLOWSYMLINKS, 1, -1) == 1)
			return strdup(p);
	}
	return NULL;
}
