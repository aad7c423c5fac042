/* partition.c - --partition: a filesystem that fills the whole disk (what
 * old AMIs are) is copied, inside the appliance, into partition 1 of a new
 * MBR disk that then gets a bootloader.  Nothing passes through the host
 * filesystem: the new disk is a second drive of the same appliance. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bootfix-int.h"

#define MIB (UINT64_C(1) << 20)

int bf_partition_table_seen(const uint8_t *s, uint64_t size)
{
	uint64_t sectors = size / 512;
	int i, gpt = 0, part = 0;

	if (s[510] != 0x55 || s[511] != 0xAA)
		return 0;
	for (i = 0; i < 4; i++) {
		const uint8_t *e = s + 446 + 16 * i;
		uint64_t start = (uint64_t)e[8] | (uint64_t)e[9] << 8 | (uint64_t)e[10] << 16 |
				 (uint64_t)e[11] << 24;
		uint64_t count = (uint64_t)e[12] | (uint64_t)e[13] << 8 | (uint64_t)e[14] << 16 |
				 (uint64_t)e[15] << 24;

		/* a boot sector that is not a partition table (FAT, NTFS)
		 * has other bytes here */
		if (e[0] != 0 && e[0] != 0x80)
			return 0;
		if (e[4] == 0)
			continue;
		if (e[4] == 0xEE)
			gpt = 1;
		else if (start >= 1 && count >= 1 && start < sectors && count <= sectors - start)
			part = 1;
	}
	if (gpt)
		return memcmp(s + 512, "EFI PART", 8) == 0;
	return part;
}

int bf_partition_prepare(struct bf *bf, char **tmp, uint64_t *size)
{
	guestfs_h *g;
	int64_t vs;

	*tmp = NULL;
	g = guestfs_create_flags(GUESTFS_CREATE_NO_ENVIRONMENT);
	if (!g)
		return scimg_int_err(bf->ctx, -ENOMEM, "cannot create a libguestfs handle");
	guestfs_set_error_handler(g, NULL, NULL);
	vs = guestfs_disk_virtual_size(g, bf->path);
	if (vs < 0) {
		int r = scimg_int_err(bf->ctx, -EIO, "'%s': virtual size: %s", bf->path,
				      guestfs_last_error(g) ? guestfs_last_error(g) : "unknown error");
		guestfs_close(g);
		return r;
	}
	/* partition 1 starts at 1 MiB and holds the whole filesystem */
	*size = ((uint64_t)vs + MIB - 1) / MIB * MIB + MIB;
	{
		int r = scimg_int_tmp_beside(bf->ctx, bf->path, "partition", 0, tmp, NULL);
		if (r < 0) {
			guestfs_close(g);
			return r;
		}
	}
	if (guestfs_disk_create(g, *tmp, bf->format, (int64_t)*size,
				GUESTFS_DISK_CREATE_PREALLOCATION, "sparse", -1) == -1) {
		int r = scimg_int_err(bf->ctx, -EIO, "'%s': creating the new partitioned disk: %s",
				      bf->path, guestfs_last_error(g));
		unlink(*tmp);
		free(*tmp);
		*tmp = NULL;
		guestfs_close(g);
		return r;
	}
	guestfs_close(g);
	return 0;
}

int bf_partition_wrap(struct bf *bf)
{
	const char *src, *dst;
	char **parts, *fstype, *newpart;
	size_t i, n = 0;
	int has_parts = 0, r;

	while (bf->devices[n])
		n++;
	src = bf->devices[0];
	parts = guestfs_list_partitions(bf->g);
	if (!parts)
		return bf_gerr(bf, "listing partitions");
	for (i = 0; parts[i]; i++)
		if (strncmp(parts[i], src, strlen(src)) == 0)
			has_parts = 1;
	scimg_int_strv_free(parts);
	guestfs_push_error_handler(bf->g, NULL, NULL);
	fstype = guestfs_vfs_type(bf->g, src);
	guestfs_pop_error_handler(bf->g);
	if (has_parts || !fstype || !*fstype) {
		json_object_object_add(bf->report, "partitioned", json_object_new_string("already"));
		bf_warn(bf, "the image already has a partition table; --partition has nothing to do");
		free(fstype);
		return 0;
	}
	if (bf->dry_run) {
		bf_change(bf, "disk", "the %s filesystem filling the disk would be moved into partition 1 "
			  "of a new MBR disk that gets GRUB", fstype);
		json_object_object_add(bf->report, "partitioned", json_object_new_string("would"));
		bf->would_wrap = 1;
		free(fstype);
		return 0;
	}
	if (n < 2) {
		free(fstype);
		return scimg_int_err(bf->ctx, -EINVAL, "'%s': no new disk for --partition", bf->path);
	}
	dst = bf->devices[n - 1];
	if (guestfs_part_init(bf->g, dst, "mbr") == -1 ||
	    guestfs_part_add(bf->g, dst, "p", 2048, -1) == -1 ||
	    guestfs_part_set_bootable(bf->g, dst, 1, 1) == -1 ||
	    guestfs_part_set_mbr_id(bf->g, dst, 1, 0x83) == -1) {
		free(fstype);
		return bf_gerr(bf, "partitioning the new disk");
	}
	newpart = bf_printf("%s1", dst);
	if (!newpart) {
		free(fstype);
		return -ENOMEM;
	}
	if (guestfs_copy_device_to_device(bf->g, src, newpart,
					  GUESTFS_COPY_DEVICE_TO_DEVICE_SPARSE, 1, -1) == -1) {
		free(newpart);
		free(fstype);
		return bf_gerr(bf, "copying the filesystem into the new partition");
	}
	r = 0;
	if (strncmp(fstype, "ext", 3) == 0) {
		/* grow the filesystem to the partition (resize2fs wants a
		 * freshly checked filesystem) */
		if (guestfs_e2fsck(bf->g, newpart, GUESTFS_E2FSCK_FORCEALL, 1, -1) == -1 ||
		    guestfs_resize2fs(bf->g, newpart) == -1)
			r = bf_gerr(bf, "checking and resizing the copied filesystem");
	}
	if (r == 0) {
		bf_change(bf, "disk", "the %s filesystem filling the disk was moved into partition 1 "
			  "(from 1 MiB) of a new MBR disk", fstype);
		json_object_object_add(bf->report, "partitioned", json_object_new_string("yes"));
		free(bf->bootdisk);
		bf->bootdisk = bf_strdup(dst);
		bf->wrapped = 1;
	}
	free(newpart);
	free(fstype);
	return r;
}
