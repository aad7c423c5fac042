/* vdi.c - the VirtualBox VDI plugin: probe, reader (dynamic, fixed and
 * differencing images) and registration.  The writer is in vdi-write.c.
 *
 * Every header field is checked before it is used, with VirtualBox's own
 * rules (VDI.cpp vdiValidateHeader) plus what keeps this reader bounded: the
 * block map must lie inside the file and below the data area, every
 * allocated entry must point inside cBlocksAllocated and inside the file,
 * and no two entries may share a data block.  The map is held in memory (at
 * most VDI_MAX_BLOCKS entries, 32 MiB).
 *
 * A differencing image stores no parent file name, only the parent's UUID:
 * the parent is looked for among the *.vdi files of the image's directory
 * (by uuidCreate, preferring one whose uuidModify matches the child's
 * uuidParentModify) and opened like any referenced file (only when allowed,
 * with the chain depth and loop checks of the library).
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vdi.h"

#define VDI_MAX_DIR_SCAN 4096   /* directory entries looked at for a parent */

struct vdi {
	int is_writer;                /* 0: this struct; see vdi-write.c */
	uint32_t version, header_size, type, flags;
	uint32_t off_blocks, off_data;
	uint32_t block_size, block_extra, nblocks, nallocated;
	unsigned block_shift;
	uint64_t disk_size_field;     /* as stored */
	uint64_t stride;              /* block_extra + block_size */
	uint8_t uuid_create[16], uuid_modify[16], uuid_link[16], uuid_parent_modify[16];
	char text[65];
	char comment[257];
	uint32_t *map;                /* host-endian */
	struct scimg_image *parent;   /* differencing images */
	char *parent_name;
	uint64_t parent_size;
};

void vdi_uuid_str(const uint8_t *u, char out[37])
{
	snprintf(out, 37, "%08x-%04x-%04x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 vdi_le32(u), (unsigned)(u[4] | u[5] << 8), (unsigned)(u[6] | u[7] << 8),
		 u[8], u[9], u[10], u[11], u[12], u[13], u[14], u[15]);
}

static int uuid_null(const uint8_t *u)
{
	int i;

	for (i = 0; i < 16; i++)
		if (u[i])
			return 0;
	return 1;
}

/* Printable copy of a fixed-size text field, up to its first NUL or '\n'. */
static void text_field(char *dst, const uint8_t *src, size_t n)
{
	size_t i;

	for (i = 0; i < n && src[i] && src[i] != '\n'; i++)
		dst[i] = (src[i] >= 0x20 && src[i] < 0x7f) ? (char)src[i] : '?';
	dst[i] = '\0';
}

static int is_pow2(uint32_t v)
{
	return v && !(v & (v - 1));
}

/* ---- probe ------------------------------------------------------------ */

static int vdi_probe(const struct scimg_plugin_probe *p)
{
	uint32_t version, hsize;
	int score;

	if (p->head_len < VDI_OFF_HEADER_SIZE + 4 ||
	    vdi_le32(p->head + VDI_OFF_SIGNATURE) != VDI_SIGNATURE)
		return 0;
	score = 70;
	version = vdi_le32(p->head + VDI_OFF_VERSION);
	hsize = vdi_le32(p->head + VDI_OFF_HEADER_SIZE);
	if (version >> 16 == 1 && hsize >= VDI_HEADER_SIZE_V1 && hsize <= 65536)
		score = 90;
	if (score == 90 && memcmp(p->head, "<<< ", 4) == 0 &&
	    memchr(p->head, '\n', 64) != NULL)
		score = 100;
	return score;
}

/* ---- parent lookup ------------------------------------------------------ */

static int vdi_name_filter(const struct dirent *d)
{
	size_t l = strlen(d->d_name);
	return l > 4 && strcasecmp(d->d_name + l - 4, ".vdi") == 0;
}

/* Read the creation and modification UUIDs of the VDI file PATH; 0 when it
 * is a readable VDI file. */
static int peek_uuids(const char *path, uint8_t create[16], uint8_t modify[16])
{
	uint8_t h[VDI_OFF_UUID_MODIFY + 16];
	struct stat st;
	int fd, ok = -1;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return -1;
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
	    pread(fd, h, sizeof(h), 0) == (ssize_t)sizeof(h) &&
	    vdi_le32(h + VDI_OFF_SIGNATURE) == VDI_SIGNATURE) {
		memcpy(create, h + VDI_OFF_UUID_CREATE, 16);
		memcpy(modify, h + VDI_OFF_UUID_MODIFY, 16);
		ok = 0;
	}
	close(fd);
	return ok;
}

static int find_parent(struct scimg_image *img, struct vdi *v)
{
	const char *path = scimg_image_path(img), *dir = scimg_plugin_file_dir(img);
	struct dirent **names = NULL;
	char link[37], pmod[37], *best = NULL;
	int n, i, best_exact = 0, ret;

	vdi_uuid_str(v->uuid_link, link);
	vdi_uuid_str(v->uuid_parent_modify, pmod);
	if (!(scimg_ctx_get_flags(scimg_plugin_ctx(img)) & SCIMG_CTX_ALLOW_BACKING))
		return scimg_plugin_err(img, -EPERM,
					"'%s' is a VDI differencing image whose parent (UUID %s, uuidLinkage at offset %d) is needed, and opening referenced files is not allowed",
					path, link, VDI_OFF_UUID_LINKAGE);
	n = scandir(dir, &names, vdi_name_filter, alphasort);
	if (n < 0)
		return scimg_plugin_err(img, -ENOENT,
					"'%s': VDI differencing image: cannot list '%s' to find its parent (UUID %s, uuidLinkage at offset %d): %s",
					path, dir, link, VDI_OFF_UUID_LINKAGE, strerror(errno));
	for (i = 0; i < n && i < VDI_MAX_DIR_SCAN; i++) {
		uint8_t c[16], m[16];
		size_t l = strlen(dir) + strlen(names[i]->d_name) + 2;
		char *p = malloc(l);

		if (!p)
			break;
		snprintf(p, l, "%s/%s", dir, names[i]->d_name);
		if (peek_uuids(p, c, m) == 0 && memcmp(c, v->uuid_link, 16) == 0) {
			int exact = memcmp(m, v->uuid_parent_modify, 16) == 0;
			if (!best || (exact && !best_exact)) {
				free(best);
				best = strdup(names[i]->d_name);
				best_exact = exact;
			}
		}
		free(p);
	}
	for (i = 0; i < n; i++)
		free(names[i]);
	free(names);
	if (!best)
		return scimg_plugin_err(img, -ENOENT,
					"'%s': VDI differencing image: its parent, the VDI with UUID %s (uuidLinkage at offset %d), is missing: no .vdi file in '%s' has that creation UUID",
					path, link, VDI_OFF_UUID_LINKAGE, dir);
	ret = scimg_plugin_open_child(img, best, "vdi", &v->parent);
	if (ret < 0) {
		scimg_plugin_err_prefix(img, "'%s': VDI parent '%s'", path, best);
		free(best);
		return ret;
	}
	v->parent_name = best;
	v->parent_size = scimg_image_size(v->parent);
	if (strcmp(scimg_image_format(v->parent), "vdi") == 0) {
		const struct vdi *pv = scimg_plugin_priv(v->parent);
		char have[37];

		if (memcmp(pv->uuid_create, v->uuid_link, 16) != 0)
			return scimg_plugin_err(img, -EINVAL,
						"'%s': VDI parent '%s' changed while it was opened (creation UUID no longer %s)",
						path, best, link);
		if (!uuid_null(v->uuid_parent_modify) &&
		    memcmp(pv->uuid_modify, v->uuid_parent_modify, 16) != 0) {
			vdi_uuid_str(pv->uuid_modify, have);
			return scimg_plugin_err(img, -EINVAL,
						"'%s': VDI parent '%s' was modified after this differencing image was made: uuidParentModify at offset %d is %s, but the parent's modification UUID is %s",
						path, best, VDI_OFF_UUID_PARENT_MODIFY, pmod, have);
		}
	}
	return 0;
}

/* ---- open --------------------------------------------------------------- */

static void vdi_free(struct vdi *v)
{
	if (!v)
		return;
	scimg_image_close(v->parent);
	free(v->parent_name);
	free(v->map);
	free(v);
}

/* Check the header fields in H (LEN bytes read from offset 0). */
static int check_header(struct scimg_image *img, struct vdi *v,
			const uint8_t *h, uint64_t fsize)
{
	const char *path = scimg_image_path(img);
	uint64_t end;
	uint32_t sig = vdi_le32(h + VDI_OFF_SIGNATURE);

	if (sig != VDI_SIGNATURE)
		return scimg_plugin_err(img, -EINVAL,
					"'%s': VDI signature at offset %d is 0x%08x, expected 0x%08x",
					path, VDI_OFF_SIGNATURE, sig, VDI_SIGNATURE);
	v->version = vdi_le32(h + VDI_OFF_VERSION);
	if (v->version >> 16 != 1)
		return scimg_plugin_err(img, -ENOTSUP,
					"'%s': VDI version at offset %d is %u.%u, expected 1.x (version 0 images of VirtualBox before 1.4 are not supported)",
					path, VDI_OFF_VERSION, v->version >> 16, v->version & 0xffff);
	v->header_size = vdi_le32(h + VDI_OFF_HEADER_SIZE);
	if (v->header_size < VDI_HEADER_SIZE_V1)
		return scimg_plugin_err(img, -EINVAL,
					"'%s': VDI header size at offset %d is %u, expected at least %u",
					path, VDI_OFF_HEADER_SIZE, v->header_size, VDI_HEADER_SIZE_V1);
	v->type = vdi_le32(h + VDI_OFF_TYPE);
	if (v->type == VDI_TYPE_UNDO)
		return scimg_plugin_err(img, -ENOTSUP,
					"'%s': VDI image type at offset %d is 3 (undo), which is not supported",
					path, VDI_OFF_TYPE);
	if (v->type != VDI_TYPE_NORMAL && v->type != VDI_TYPE_FIXED && v->type != VDI_TYPE_DIFF)
		return scimg_plugin_err(img, -EINVAL,
					"'%s': VDI image type at offset %d is %u, expected 1 (dynamic), 2 (fixed) or 4 (differencing)",
					path, VDI_OFF_TYPE, v->type);
	v->flags = vdi_le32(h + VDI_OFF_FLAGS);
	text_field(v->text, h + VDI_OFF_TEXT, 64);
	text_field(v->comment, h + VDI_OFF_COMMENT, 256);
	v->off_blocks = vdi_le32(h + VDI_OFF_BLOCKS);
	v->off_data = vdi_le32(h + VDI_OFF_DATA);
	v->disk_size_field = vdi_le64(h + VDI_OFF_DISK_SIZE);
	v->block_size = vdi_le32(h + VDI_OFF_BLOCK_SIZE);
	v->block_extra = vdi_le32(h + VDI_OFF_BLOCK_EXTRA);
	v->nblocks = vdi_le32(h + VDI_OFF_NBLOCKS);
	v->nallocated = vdi_le32(h + VDI_OFF_NALLOCATED);
	memcpy(v->uuid_create, h + VDI_OFF_UUID_CREATE, 16);
	memcpy(v->uuid_modify, h + VDI_OFF_UUID_MODIFY, 16);
	memcpy(v->uuid_link, h + VDI_OFF_UUID_LINKAGE, 16);
	memcpy(v->uuid_parent_modify, h + VDI_OFF_UUID_PARENT_MODIFY, 16);

	if (!is_pow2(v->block_size) || v->block_size < 512 || v->block_size > (UINT32_C(1) << 30))
		return scimg_plugin_err(img, -EINVAL,
					"'%s': VDI block size at offset %d is %u, expected a power of two from 512 to 1 GiB (1048576 in practice)",
					path, VDI_OFF_BLOCK_SIZE, v->block_size);
	if (v->block_extra && (!is_pow2(v->block_extra) || v->block_extra > (UINT32_C(1) << 30)))
		return scimg_plugin_err(img, -EINVAL,
					"'%s': VDI block extra size at offset %d is %u, expected 0 or a power of two up to 1 GiB",
					path, VDI_OFF_BLOCK_EXTRA, v->block_extra);
	v->block_shift = (unsigned)__builtin_ctz(v->block_size);
	v->stride = (uint64_t)v->block_size + v->block_extra;
	if (v->disk_size_field == 0)
		return scimg_plugin_err(img, -EINVAL,
					"'%s': VDI disk size at offset %d is 0, expected the virtual size in bytes",
					path, VDI_OFF_DISK_SIZE);
	if (v->nblocks == 0 || v->nblocks > VDI_MAX_BLOCKS)
		return scimg_plugin_err(img, v->nblocks ? -EFBIG : -EINVAL,
					"'%s': VDI block count at offset %d is %u, expected 1 to %u",
					path, VDI_OFF_NBLOCKS, v->nblocks, VDI_MAX_BLOCKS);
	if ((uint64_t)v->nblocks << v->block_shift < v->disk_size_field)
		return scimg_plugin_err(img, -EINVAL,
					"'%s': VDI disk size at offset %d is %llu, more than the %u blocks of %u bytes at offsets %d and %d hold",
					path, VDI_OFF_DISK_SIZE, (unsigned long long)v->disk_size_field,
					v->nblocks, v->block_size, VDI_OFF_NBLOCKS, VDI_OFF_BLOCK_SIZE);
	if (v->nallocated > v->nblocks)
		return scimg_plugin_err(img, -EINVAL,
					"'%s': VDI allocated block count at offset %d is %u, expected at most the block count %u",
					path, VDI_OFF_NALLOCATED, v->nallocated, v->nblocks);
	if ((uint64_t)v->off_blocks < (uint64_t)VDI_OFF_HEADER_SIZE + v->header_size)
		return scimg_plugin_err(img, -EINVAL,
					"'%s': VDI block map offset at offset %d is %u, expected at least %llu (after the %u-byte header)",
					path, VDI_OFF_BLOCKS, v->off_blocks,
					(unsigned long long)VDI_OFF_HEADER_SIZE + v->header_size, v->header_size);
	end = (uint64_t)v->off_blocks + (uint64_t)v->nblocks * 4;
	if (v->off_data < end)
		return scimg_plugin_err(img, -EINVAL,
					"'%s': VDI data offset at offset %d is %u, expected at least %llu (after the block map of %u entries at %u)",
					path, VDI_OFF_DATA, v->off_data, (unsigned long long)end,
					v->nblocks, v->off_blocks);
	if (v->off_data > fsize)
		return scimg_plugin_err(img, -EINVAL,
					"'%s': VDI data offset at offset %d is %u, beyond the end of the file (%llu bytes; truncated?)",
					path, VDI_OFF_DATA, v->off_data, (unsigned long long)fsize);
	if (v->header_size >= VDI_HEADER_SIZE_V1PLUS) {
		uint32_t ss = vdi_le32(h + VDI_OFF_LCHS_GEOMETRY + 12);
		if (ss != 512)
			return scimg_plugin_err(img, -EINVAL,
						"'%s': VDI logical geometry sector size at offset %d is %u, expected 512",
						path, VDI_OFF_LCHS_GEOMETRY + 12, ss);
	}
	if (uuid_null(v->uuid_create))
		return scimg_plugin_err(img, -EINVAL,
					"'%s': VDI creation UUID at offset %d is null, expected a UUID",
					path, VDI_OFF_UUID_CREATE);
	if (uuid_null(v->uuid_modify))
		return scimg_plugin_err(img, -EINVAL,
					"'%s': VDI modification UUID at offset %d is null, expected a UUID",
					path, VDI_OFF_UUID_MODIFY);
	if (v->type == VDI_TYPE_DIFF && uuid_null(v->uuid_link))
		return scimg_plugin_err(img, -EINVAL,
					"'%s': VDI differencing image: parent UUID (uuidLinkage) at offset %d is null, expected the parent's creation UUID",
					path, VDI_OFF_UUID_LINKAGE);
	return 0;
}

/* Read the block map and check every entry. */
static int load_map(struct scimg_image *img, struct vdi *v, uint64_t fsize)
{
	const char *path = scimg_image_path(img);
	uint8_t *seen = NULL;
	uint32_t i;
	int ret;

	v->map = malloc((size_t)v->nblocks * 4);
	seen = calloc((size_t)v->nallocated / 8 + 1, 1);
	if (!v->map || !seen) {
		free(seen);
		return scimg_plugin_err(img, -ENOMEM, "out of memory");
	}
	ret = scimg_plugin_read(img, v->map, (size_t)v->nblocks * 4, v->off_blocks,
				"VDI block map");
	if (ret < 0)
		goto out;
	for (i = 0; i < v->nblocks; i++) {
		uint32_t e = vdi_le32((const uint8_t *)&v->map[i]);
		uint64_t eoff = (uint64_t)v->off_blocks + (uint64_t)i * 4;

		v->map[i] = e;
		if (e >= VDI_BLOCK_ZERO)
			continue;
		if (e >= v->nallocated) {
			ret = scimg_plugin_err(img, -EINVAL,
					       "'%s': VDI block map entry %u at offset %llu is %u, expected less than the allocated block count %u (or 0xfffffffe/0xffffffff)",
					       path, i, (unsigned long long)eoff, e, v->nallocated);
			goto out;
		}
		if (seen[e / 8] & (1u << (e % 8))) {
			ret = scimg_plugin_err(img, -EINVAL,
					       "'%s': VDI block map entry %u at offset %llu points to data block %u, which an earlier entry already uses",
					       path, i, (unsigned long long)eoff, e);
			goto out;
		}
		seen[e / 8] |= (uint8_t)(1u << (e % 8));
		if ((uint64_t)v->off_data + ((uint64_t)e + 1) * v->stride > fsize) {
			ret = scimg_plugin_err(img, -EINVAL,
					       "'%s': VDI block map entry %u at offset %llu points to data block %u at offset %llu, beyond the end of the file (%llu bytes; truncated?)",
					       path, i, (unsigned long long)eoff, e,
					       (unsigned long long)(v->off_data + (uint64_t)e * v->stride + v->block_extra),
					       (unsigned long long)fsize);
			goto out;
		}
	}
	ret = 0;
out:
	free(seen);
	return ret;
}

static int vdi_open(struct scimg_image *img)
{
	uint64_t fsize = scimg_plugin_file_size(img);
	uint8_t h[VDI_HEADER_END];
	struct vdi *v;
	int ret;

	if (fsize < VDI_OFF_HEADER_SIZE + VDI_HEADER_SIZE_V1)
		return scimg_plugin_err(img, -EINVAL,
					"'%s': file of %llu bytes is too short for a VDI header (%u bytes)",
					scimg_image_path(img), (unsigned long long)fsize,
					VDI_OFF_HEADER_SIZE + VDI_HEADER_SIZE_V1);
	memset(h, 0, sizeof(h));
	ret = scimg_plugin_read(img, h, fsize < sizeof(h) ? (size_t)fsize : sizeof(h), 0,
				"VDI header");
	if (ret < 0)
		return ret;
	v = calloc(1, sizeof(*v));
	if (!v)
		return scimg_plugin_err(img, -ENOMEM, "out of memory");
	if ((ret = check_header(img, v, h, fsize)) < 0 ||
	    (ret = load_map(img, v, fsize)) < 0)
		goto fail;
	if (v->type == VDI_TYPE_DIFF && (ret = find_parent(img, v)) < 0)
		goto fail;
	/* VirtualBox rounds a size that is not a multiple of 512 down */
	scimg_plugin_set_size(img, v->disk_size_field & ~UINT64_C(511));
	scimg_plugin_set_priv(img, v);
	return 0;
fail:
	vdi_free(v);
	return ret;
}

static void vdi_close(struct scimg_image *img)
{
	struct vdi *v = scimg_plugin_priv(img);

	if (v && v->is_writer) {
		vdi_writer_close(img);
		return;
	}
	vdi_free(v);
	scimg_plugin_set_priv(img, NULL);
}

/* ---- reading ------------------------------------------------------------ */

/* Read LEN bytes at OFF from the parent (zeros beyond its size). */
static int parent_read(struct scimg_image *img, struct vdi *v, uint8_t *buf,
		       size_t len, uint64_t off)
{
	size_t n = 0;
	int ret;

	/* no error prefix here: this may run on a worker thread, and the
	 * parent's own message names the parent file */
	(void)img;
	if (v->parent && off < v->parent_size) {
		n = v->parent_size - off < len ? (size_t)(v->parent_size - off) : len;
		ret = scimg_image_pread(v->parent, buf, n, off);
		if (ret < 0)
			return ret;
	}
	memset(buf + n, 0, len - n);
	return 0;
}

static int vdi_pread(struct scimg_image *img, void *buf, size_t len,
		     uint64_t off)
{
	struct vdi *v = scimg_plugin_priv(img);
	uint8_t *p = buf;
	int ret;

	while (len) {
		uint64_t blk = off >> v->block_shift;
		uint32_t in = (uint32_t)(off & (v->block_size - 1));
		size_t n = v->block_size - in < len ? v->block_size - in : len;
		uint32_t e = v->map[blk];

		if (e < VDI_BLOCK_ZERO)
			ret = scimg_plugin_read(img, p, n,
						v->off_data + (uint64_t)e * v->stride + v->block_extra + in,
						"VDI data block");
		else if (e == VDI_BLOCK_FREE && v->parent)
			ret = parent_read(img, v, p, n, off);
		else
			ret = (memset(p, 0, n), 0);
		if (ret < 0)
			return ret;
		p += n;
		off += n;
		len -= n;
	}
	return 0;
}

enum run_kind { RUN_DATA, RUN_ZERO, RUN_FREE };

static enum run_kind kind_of(uint32_t e)
{
	if (e < VDI_BLOCK_ZERO)
		return RUN_DATA;
	return e == VDI_BLOCK_ZERO ? RUN_ZERO : RUN_FREE;
}

static int vdi_block_status(struct scimg_image *img, uint64_t off,
			    uint64_t len, struct scimg_extent *ext)
{
	struct vdi *v = scimg_plugin_priv(img);
	uint64_t blk = off >> v->block_shift, end = off + len, run_end;
	enum run_kind k = kind_of(v->map[blk]);
	int ret;

	/* extend over the following blocks of the same kind */
	run_end = (blk + 1) << v->block_shift;
	while (run_end < end && kind_of(v->map[run_end >> v->block_shift]) == k)
		run_end += v->block_size;
	if (run_end > end)
		run_end = end;
	ext->offset = off;
	ext->length = run_end - off;
	if (k == RUN_DATA) {
		ext->type = SCIMG_EXTENT_DATA;
	} else if (k == RUN_ZERO) {
		ext->type = SCIMG_EXTENT_ZERO;
	} else if (!v->parent || off >= v->parent_size) {
		/* unallocated, and nothing below (or beyond the parent's end) */
		ext->type = SCIMG_EXTENT_HOLE;
	} else {
		/* unallocated here: the parent says what it is */
		uint64_t l = ext->length;
		if (v->parent_size - off < l)
			l = v->parent_size - off;
		ret = scimg_image_block_status(v->parent, off, l, ext);
		if (ret < 0)
			return ret;
	}
	return 0;
}

static int vdi_info(struct scimg_image *img, json_object *obj)
{
	static const char *const types[] = { "?", "dynamic", "fixed", "undo", "differencing" };
	struct vdi *v = scimg_plugin_priv(img);
	char u[37], ver[24];

	snprintf(ver, sizeof(ver), "%u.%u", v->version >> 16, v->version & 0xffff);
	json_object_object_add(obj, "type", json_object_new_string(types[v->type]));
	json_object_object_add(obj, "version", json_object_new_string(ver));
	json_object_object_add(obj, "header-text", json_object_new_string(v->text));
	json_object_object_add(obj, "header-size", json_object_new_int64(v->header_size));
	vdi_uuid_str(v->uuid_create, u);
	json_object_object_add(obj, "uuid", json_object_new_string(u));
	vdi_uuid_str(v->uuid_modify, u);
	json_object_object_add(obj, "modification-uuid", json_object_new_string(u));
	if (v->type == VDI_TYPE_DIFF) {
		vdi_uuid_str(v->uuid_link, u);
		json_object_object_add(obj, "parent-uuid", json_object_new_string(u));
		vdi_uuid_str(v->uuid_parent_modify, u);
		json_object_object_add(obj, "parent-modification-uuid", json_object_new_string(u));
		if (v->parent_name)
			json_object_object_add(obj, "parent-filename",
					       json_object_new_string(v->parent_name));
	}
	json_object_object_add(obj, "block-size", json_object_new_int64(v->block_size));
	if (v->block_extra)
		json_object_object_add(obj, "block-extra", json_object_new_int64(v->block_extra));
	json_object_object_add(obj, "blocks", json_object_new_int64(v->nblocks));
	json_object_object_add(obj, "blocks-allocated", json_object_new_int64(v->nallocated));
	if (v->disk_size_field % 512)
		json_object_object_add(obj, "disk-size-field",
				       json_object_new_int64((int64_t)v->disk_size_field));
	if (v->comment[0])
		json_object_object_add(obj, "comment", json_object_new_string(v->comment));
	return 0;
}

/* ---- registration ------------------------------------------------------- */

const struct scimg_plugin_format vdi_format = {
	SCIMG_PLUGIN_HEAD(struct scimg_plugin_format),
	.name = "vdi",
	.description = "VirtualBox VDI (dynamic, fixed, differencing)",
	SCIMG_PLUGIN_FORMAT_READER(vdi),
	.info = vdi_info,
	.create_opts = vdi_create_opts,
	SCIMG_PLUGIN_FORMAT_WRITER(vdi),
	.flags = SCIMG_PLUGIN_FMT_PARALLEL_READ,
};

SCIMG_PLUGIN_REGISTER(.name = "vdi",
		      .version = "1.0",
		      .description = "VirtualBox VDI disk images: read (dynamic, fixed, differencing) and write (dynamic, fixed)",
		      .formats = SCIMG_PLUGIN_FORMATS(&vdi_format));
