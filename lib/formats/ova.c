/* formats/ova.c - Open Virtualization Appliance: a tar of an OVF descriptor
 * (first), one streamOptimized VMDK and a manifest of SHA-256 digests
 * (last), the shape VMware ovftool writes and vSphere/ESXi import.
 *
 * Writing streams the VMDK into the tar without a temporary copy:
 *
 *   0            ustar header of NAME.ovf
 *   512          the OVF (libxml2), padded with trailing white space to
 *                OVA_OVF_SPACE - 512 bytes (XML allows white space after
 *                the root element); written last, when sizes are known
 *   OVA_OVF_SPACE ustar header of NAME-disk1.vmdk (written at finish)
 *   + 512        the VMDK, written by the vmdk writer through a window of
 *                the output (struct scimg_sink) that calls itself
 *                NAME-disk1.vmdk
 *   ...          ustar header + NAME.mf, end-of-archive blocks
 *
 * The vmdk writer gets an image of its own (struct ova_w's VMDK): the
 * writer fields of the ova image, its output (FILE and OUT) the window of
 * the disk member, its PRIV the vmdk writer's state.  Every writer call is
 * forwarded with that image, so the ova image's PRIV stays the ova state
 * (never swapped: the convert engine calls compress() on worker threads
 * while the writer runs) and its OUT stays the whole tar.
 *
 * The VMDK's SHA-256 is computed by reading it back once at finish (the
 * vmdk writer goes back to its header and grain directory, so it cannot be
 * hashed on the way).  Members larger than 8 GiB - 1 get a base-256 size
 * field (the GNU extension every tar reader, Python and libarchive read).
 *
 * Reading opens the disk the OVF's first Disk names (through its File
 * reference) in place, as a window on the tar (lib/package/tar.c lists the
 * members and refuses absolute names, "..", links, devices and unaligned
 * data).  The OVF is parsed without network access or entity expansion;
 * the File's ovf:size must match the member.  Digests in the manifest are
 * not verified when opening (that would read the whole file).
 */
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "scimg-int.h"
#include "formats.h"
#include "package/package.h"

#define OVA_OVF_SPACE 16384u       /* OVF header + OVF text (padded) */
#define OVA_MAX_OVF (4u << 20)     /* an OVF larger than this is refused */
#define OVA_NAME_MAX 64            /* base name used for members */
#define OVF_NS "http://schemas.dmtf.org/ovf/envelope/1"
#define VMDK_STREAM_URI "http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized"

static int ends_with(const char *s, size_t n, const char *suffix)
{
	size_t k = strlen(suffix);
	return n >= k && strncasecmp(s + n - k, suffix, k) == 0;
}

/* An OVA starts with a ustar header of a regular file named *.ovf. */
static int ova_probe(const struct scimg_probe *p)
{
	const uint8_t *h = p->head;

	if (p->head_len < 512 || p->file_size < 1536 || !scimg_int_ustar_ok(h))
		return 0;
	if (h[156] != '0' && h[156] != '\0')
		return 0;
	if (!ends_with((const char *)h, strnlen((const char *)h, 100), ".ovf"))
		return 0;
	return 90;
}

/* ---- reading ------------------------------------------------------------ */

struct ova_r {
	struct sci_tar tar;
	struct scimg_image *disk;
	char *ovf_name, *disk_name;
	uint64_t capacity;       /* from the OVF */
};

static void ova_close(struct scimg_image *img);

static xmlChar *ovf_attr(xmlNodePtr n, const char *name)
{
	return xmlGetNsProp(n, BAD_CAST name, BAD_CAST OVF_NS);
}

static int is_ovf(xmlNodePtr n, const char *name)
{
	return n->type == XML_ELEMENT_NODE && n->ns &&
	       xmlStrEqual(n->ns->href, BAD_CAST OVF_NS) &&
	       xmlStrEqual(n->name, BAD_CAST name);
}

static xmlNodePtr child(xmlNodePtr n, const char *name)
{
	for (n = n ? n->children : NULL; n; n = n->next)
		if (is_ovf(n, name))
			return n;
	return NULL;
}

/* "byte", "byte * 2^N" (N <= 40) -> multiplier; 0 when not understood. */
static uint64_t alloc_units(const char *u)
{
	unsigned long e;
	char *end;

	if (!u || !strcmp(u, "byte"))
		return 1;
	if (strncmp(u, "byte * 2^", 9) != 0 || !(u[9] >= '0' && u[9] <= '9'))
		return 0;
	e = strtoul(u + 9, &end, 10);
	return *end || e > 40 ? 0 : 1ull << e;
}

static int parse_u64(const char *s, uint64_t *v)
{
	char *end;

	if (!s || !(*s >= '0' && *s <= '9'))
		return -1;
	errno = 0;
	*v = strtoull(s, &end, 10);
	return *end || errno ? -1 : 0;
}

/* Find the disk file the OVF's first Disk refers to; check its size. */
static int ovf_disk(struct scimg_image *img, struct ova_r *r, const char *xml,
		    size_t len)
{
	struct scimg_ctx *ctx = img->ctx;
	xmlParserCtxtPtr pc = xmlNewParserCtxt();
	xmlDocPtr doc = NULL;
	xmlNodePtr root, refs, ds, disk, f;
	xmlChar *fileref = NULL, *cap = NULL, *units = NULL, *fmt = NULL;
	xmlChar *href = NULL, *id = NULL, *fsize = NULL;
	const struct sci_member *m;
	uint64_t v, mult;
	int ret = 0;

	if (!pc)
		return scimg_int_err(ctx, -ENOMEM, "out of memory");
	/* no entity expansion, no DTD loading, no network */
	doc = xmlCtxtReadMemory(pc, xml, (int)len, r->ovf_name, NULL,
				XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
	if (!doc) {
		xmlErrorPtr e = xmlCtxtGetLastError(pc);
		ret = scimg_int_err(ctx, -EINVAL, "'%s': OVF descriptor '%s' is not well-formed XML: line %d: %s",
				    img->path, r->ovf_name, e ? e->line : 0,
				    e && e->message ? e->message : "parse error");
		goto out;
	}
	root = xmlDocGetRootElement(doc);
	if (!root || !is_ovf(root, "Envelope")) {
		ret = scimg_int_err(ctx, -EINVAL, "'%s': OVF descriptor '%s': root element is not an OVF 1.x Envelope (namespace %s)",
				    img->path, r->ovf_name, OVF_NS);
		goto out;
	}
	refs = child(root, "References");
	ds = child(root, "DiskSection");
	disk = child(ds, "Disk");
	if (!refs || !disk) {
		ret = scimg_int_err(ctx, -EINVAL, "'%s': OVF descriptor '%s' has no %s",
				    img->path, r->ovf_name, refs ? "DiskSection/Disk" : "References");
		goto out;
	}
	fileref = ovf_attr(disk, "fileRef");
	cap = ovf_attr(disk, "capacity");
	units = ovf_attr(disk, "capacityAllocationUnits");
	fmt = ovf_attr(disk, "format");
	if (!fileref) {
		ret = scimg_int_err(ctx, -EINVAL, "'%s': OVF Disk has no ovf:fileRef (an empty disk is not supported)",
				    img->path);
		goto out;
	}
	if (fmt && !strstr((const char *)fmt, "vmdk.html")) {
		ret = scimg_int_err(ctx, -ENOTSUP, "'%s': OVF Disk format is '%s', expected a VMDK (%s)",
				    img->path, (const char *)fmt, VMDK_STREAM_URI);
		goto out;
	}
	mult = alloc_units((const char *)units);
	if (!cap || parse_u64((const char *)cap, &v) < 0 || !mult ||
	    !scimg_mul_ok(v, mult, &r->capacity)) {
		ret = scimg_int_err(ctx, -EINVAL, "'%s': OVF Disk ovf:capacity '%s' (units '%s') is not a byte count",
				    img->path, cap ? (const char *)cap : "",
				    units ? (const char *)units : "byte");
		goto out;
	}
	for (f = refs->children; f; f = f->next) {
		if (!is_ovf(f, "File"))
			continue;
		id = ovf_attr(f, "id");
		if (id && xmlStrEqual(id, fileref))
			break;
		xmlFree(id);
		id = NULL;
	}
	if (!f) {
		ret = scimg_int_err(ctx, -EINVAL, "'%s': OVF Disk refers to file id '%s', which References does not list",
				    img->path, (const char *)fileref);
		goto out;
	}
	href = ovf_attr(f, "href");
	fsize = ovf_attr(f, "size");
	if (!href || strchr((const char *)href, '/') || strstr((const char *)href, "..")) {
		ret = scimg_int_err(ctx, -EINVAL, "'%s': OVF File '%s' has ovf:href '%s', expected a plain member name",
				    img->path, (const char *)fileref, href ? (const char *)href : "");
		goto out;
	}
	if (xmlStrEqual(href, BAD_CAST r->ovf_name) || !(m = scimg_int_tar_find(&r->tar, (const char *)href))) {
		ret = scimg_int_err(ctx, -EINVAL, "'%s': the OVF names disk file '%s', which is not a member of the OVA",
				    img->path, (const char *)href);
		goto out;
	}
	if (fsize && (parse_u64((const char *)fsize, &v) < 0 || v != m->size)) {
		ret = scimg_int_err(ctx, -EINVAL, "'%s': OVF says file '%s' is %s bytes, the tar member is %llu",
				    img->path, (const char *)href, (const char *)fsize,
				    (unsigned long long)m->size);
		goto out;
	}
	r->disk_name = strdup((const char *)href);
	if (!r->disk_name)
		ret = scimg_int_err(ctx, -ENOMEM, "out of memory");
out:
	xmlFree(fileref);
	xmlFree(cap);
	xmlFree(units);
	xmlFree(fmt);
	xmlFree(href);
	xmlFree(id);
	xmlFree(fsize);
	xmlFreeDoc(doc);
	xmlFreeParserCtxt(pc);
	return ret;
}

static int ova_open(struct scimg_image *img)
{
	struct scimg_ctx *ctx = img->ctx;
	const struct sci_member *om, *dm;
	struct ova_r *r;
	char *xml = NULL;
	int ret;

	r = calloc(1, sizeof(*r));
	if (!r)
		return scimg_int_err(ctx, -ENOMEM, "out of memory");
	img->priv = r;
	if ((ret = scimg_int_tar_list(img->src, &r->tar)) < 0)
		goto fail;
	om = &r->tar.m[0];
	if (r->tar.n < 2 || !ends_with(om->name, strlen(om->name), ".ovf")) {
		ret = scimg_int_err(ctx, -EINVAL, "'%s': an OVA starts with the OVF descriptor (*.ovf) and holds a disk; found %zu member(s), the first '%s'",
				    img->path, r->tar.n, r->tar.n ? om->name : "");
		goto fail;
	}
	if (om->size > OVA_MAX_OVF) {
		ret = scimg_int_err(ctx, -EFBIG, "'%s': OVF descriptor '%s' is %llu bytes, more than the %u accepted",
				    img->path, om->name, (unsigned long long)om->size, OVA_MAX_OVF);
		goto fail;
	}
	r->ovf_name = strdup(om->name);
	if (!r->ovf_name) {
		ret = scimg_int_err(ctx, -ENOMEM, "out of memory");
		goto fail;
	}
	if ((ret = scimg_int_member_read(img->src, om, &xml)) < 0)
		goto fail;
	if ((ret = ovf_disk(img, r, xml, (size_t)om->size)) < 0)
		goto fail;
	dm = scimg_int_tar_find(&r->tar, r->disk_name);
	if ((ret = scimg_int_open_tar_member(img, dm->offset, dm->size, r->disk_name,
					     "vmdk", &r->disk)) < 0) {
		scimg_int_err_prefix(ctx, "'%s': disk member '%s'", img->path, r->disk_name);
		goto fail;
	}
	if (r->disk->size != r->capacity) {
		ret = scimg_int_err(ctx, -EINVAL, "'%s': the OVF says disk '%s' holds %llu bytes, the VMDK holds %llu",
				    img->path, r->disk_name, (unsigned long long)r->capacity,
				    (unsigned long long)r->disk->size);
		goto fail;
	}
	img->size = r->disk->size;
	free(xml);
	return 0;
fail:
	free(xml);
	ova_close(img);
	return ret;
}

static int ova_pread(struct scimg_image *img, void *buf, size_t len, uint64_t off)
{
	struct ova_r *r = img->priv;
	return scimg_image_pread(r->disk, buf, len, off);
}

static int ova_block_status(struct scimg_image *img, uint64_t off, uint64_t len,
			    struct scimg_extent *ext)
{
	struct ova_r *r = img->priv;
	return scimg_image_block_status(r->disk, off, len, ext);
}

static int ova_info(struct scimg_image *img, json_object *info)
{
	json_object *obj = scimg_int_info_details(info);
	struct ova_r *r = img->priv;
	json_object *mem = json_object_new_array(), *di = NULL;
	size_t i;

	if (!obj)
		return scimg_int_err(img->ctx, -ENOMEM, "out of memory");
	for (i = 0; i < r->tar.n; i++) {
		json_object *m = json_object_new_object();
		json_object_object_add(m, "name", json_object_new_string(r->tar.m[i].name));
		json_object_object_add(m, "offset", json_object_new_uint64(r->tar.m[i].offset));
		json_object_object_add(m, "size", json_object_new_uint64(r->tar.m[i].size));
		json_object_array_add(mem, m);
	}
	json_object_object_add(obj, "ovf", json_object_new_string(r->ovf_name));
	json_object_object_add(obj, "disk", json_object_new_string(r->disk_name));
	json_object_object_add(obj, "members", mem);
	if (scimg_image_info(r->disk, &di) == 0) {
		json_object *fs;
		/* the disk's ImageInfo, as qemu-img would show the member */
		json_object_object_add(obj, "disk-info", json_object_get(di));
		if (json_object_object_get_ex(di, "format-specific", &fs))
			json_object_object_add(info, "format-specific", json_object_get(fs));
		if (json_object_object_get_ex(di, "cluster-size", &fs))
			json_object_object_add(info, "cluster-size", json_object_get(fs));
		json_object_put(di);
	}
	return 0;
}

/* ---- writing ------------------------------------------------------------ */

struct ova_w {
	char base[OVA_NAME_MAX + 1];     /* member names: BASE.ovf, BASE-disk1.vmdk, BASE.mf */
	char disk_name[OVA_NAME_MAX + 16]; /* BASE-disk1.vmdk */
	/* the vmdk writer's image: FILE and OUT the VMDK member's window of
	 * the output, PRIV the vmdk writer's state (see the top of the file) */
	struct scimg_image vmdk;
	char vmname[256];
	const char *ostype, *adapter;
	unsigned long cpus, memory, hw;
	uint64_t populated;             /* guest bytes written */
	time_t mtime;
};

const char *const scimg_int_ova_create_opts[] = {
	"name", "cpus", "memory", "ostype", "hwversion", "adapter_type", NULL
};

static int small_uint(const char *s, unsigned long lo, unsigned long hi,
		      unsigned long *v)
{
	char *end;

	if (!s || !(*s >= '0' && *s <= '9'))
		return -1;
	errno = 0;
	*v = strtoul(s, &end, 10);
	return *end || errno || *v < lo || *v > hi ? -1 : 0;
}

/* Member base name from the output path: "dir/web.ova" -> "web"; only
 * letters, digits, '-', '_' and '.' are kept (tar and URL safe). */
static void member_base(const char *path, char *out)
{
	const char *b = strrchr(path, '/');
	size_t i, n = 0, len;

	b = b ? b + 1 : path;
	len = strlen(b);
	if (ends_with(b, len, ".ova"))
		len -= 4;
	for (i = 0; i < len && n < OVA_NAME_MAX; i++) {
		char c = b[i];
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '-' || c == '_' || (c == '.' && n))
			out[n++] = c;
	}
	out[n] = '\0';
	if (!n)
		strcpy(out, "vm");
}

/* The vmdk writer's image inside W: IMG's writer fields (messages name
 * IMG's path), writing through the window of IMG's file where the disk
 * member's data starts.  (ova is never written in place: device_ok() in
 * image-write.c, and only raw is updated in an existing file.) */
static void vmdk_image_init(struct scimg_image *img, struct ova_w *w)
{
	struct scimg_image *d = &w->vmdk;

	memset(d, 0, sizeof(*d));
	d->ctx = img->ctx;
	d->fmt = &scimg_format_vmdk;
	d->path = img->path;
	d->size = img->size;
	d->writing = 1;
	d->create_flags = img->create_flags;
	d->guard = img->guard;
	d->out_mode = img->out_mode;
	d->out_existed = img->out_existed;
	scimg_int_sink_window(&d->file, &img->file, OVA_OVF_SPACE + 512, w->disk_name);
	d->out = &d->file;
}

static int ova_setup(struct scimg_image *img, struct ova_w *w,
		     const struct scimg_opts *opts)
{
	struct scimg_ctx *ctx = img->ctx;
	const char *name = scimg_int_opts_get(opts, "name");
	const char *cpus = scimg_int_opts_get(opts, "cpus");
	const char *mem = scimg_int_opts_get(opts, "memory");
	const char *hw = scimg_int_opts_get(opts, "hwversion");
	char k_sub[] = "subformat", v_sub[] = "streamOptimized";
	char k_ad[] = "adapter_type", k_hw[] = "hwversion", v_hw[8];
	struct scimg_kv kv[3];
	struct scimg_opts vo = { kv, 0 };
	size_t i;

	member_base(img->path, w->base);
	w->cpus = 1;
	w->memory = 1024;
	w->hw = 14; /* vmx-14: ESXi 6.7 and later */
	w->ostype = scimg_int_opts_get(opts, "ostype");
	w->adapter = scimg_int_opts_get(opts, "adapter_type");
	w->mtime = time(NULL);
	if (!w->adapter)
		w->adapter = "lsilogic";
	if (cpus && small_uint(cpus, 1, 768, &w->cpus) < 0)
		return scimg_int_err(ctx, -EINVAL, "ova option 'cpus' is '%s', expected a number from 1 to 768", cpus);
	if (mem && small_uint(mem, 4, 24u << 20, &w->memory) < 0)
		return scimg_int_err(ctx, -EINVAL, "ova option 'memory' is '%s', expected MiB from 4 to 25165824", mem);
	if (hw && small_uint(hw, 4, 99, &w->hw) < 0)
		return scimg_int_err(ctx, -EINVAL, "ova option 'hwversion' is '%s', expected a number from 4 to 99", hw);
	if (!name)
		name = w->base;
	if (strlen(name) >= sizeof(w->vmname) || !*name)
		return scimg_int_err(ctx, -EINVAL, "ova option 'name' must have 1 to %zu characters",
				     sizeof(w->vmname) - 1);
	for (i = 0; name[i]; i++)
		if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f)
			return scimg_int_err(ctx, -EINVAL, "ova option 'name' holds a control character at position %zu", i);
	strcpy(w->vmname, name);
	if (w->ostype) {
		for (i = 0; w->ostype[i]; i++) {
			char c = w->ostype[i];
			if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'))
				break;
		}
		if (w->ostype[i] || i == 0 || i > 64)
			return scimg_int_err(ctx, -EINVAL, "ova option 'ostype' is '%s', expected a vSphere guest id such as otherLinux64Guest",
					     w->ostype);
	} else {
		w->ostype = "otherLinux64Guest";
	}
	/* the VMDK inside: streamOptimized, with the adapter and hardware
	 * version the OVF declares */
	kv[vo.n].key = k_sub;
	kv[vo.n++].val = v_sub;
	kv[vo.n].key = k_ad;
	kv[vo.n++].val = (char *)w->adapter;
	snprintf(v_hw, sizeof(v_hw), "%lu", w->hw);
	kv[vo.n].key = k_hw;
	kv[vo.n++].val = v_hw;
	/* the vmdk writer writes the member's data through a window of the
	 * output; its descriptor names its own extent file: the member name */
	snprintf(w->disk_name, sizeof(w->disk_name), "%s-disk1.vmdk", w->base);
	vmdk_image_init(img, w);
	return scimg_format_vmdk.create(&w->vmdk, &vo);
}

static int ova_create(struct scimg_image *img, const struct scimg_opts *opts)
{
	struct ova_w *w = calloc(1, sizeof(*w));
	int ret;

	if (!w)
		return scimg_int_err(img->ctx, -ENOMEM, "out of memory");
	img->priv = w;
	/* a failed vmdk create() has freed its own state */
	if ((ret = ova_setup(img, w, opts)) < 0) {
		free(w);
		img->priv = NULL;
	}
	return ret;
}

static int ova_pwrite(struct scimg_image *img, const void *buf, size_t len, uint64_t off)
{
	struct ova_w *w = img->priv;

	w->populated += len;
	return scimg_format_vmdk.pwrite(&w->vmdk, buf, len, off);
}

static int ova_write_zeroes(struct scimg_image *img, uint64_t off, uint64_t len)
{
	struct ova_w *w = img->priv;

	return scimg_format_vmdk.write_zeroes ? scimg_format_vmdk.write_zeroes(&w->vmdk, off, len) : 0;
}

static uint32_t ova_compress_unit(struct scimg_image *img)
{
	struct ova_w *w = img->priv;

	return scimg_format_vmdk.compress_unit(&w->vmdk);
}

/* Called on the convert engine's worker threads: only reads W. */
static int ova_compress(struct scimg_image *img, const void *in, size_t len,
			void *out, size_t *outlen)
{
	struct ova_w *w = img->priv;

	return scimg_format_vmdk.compress(&w->vmdk, in, len, out, outlen);
}

static int ova_pwrite_compressed(struct scimg_image *img, uint64_t off,
				 const void *data, size_t clen, size_t len)
{
	struct ova_w *w = img->priv;

	w->populated += len;
	return scimg_format_vmdk.pwrite_compressed(&w->vmdk, off, data, clen, len);
}

/* SHA-256 of LEN bytes of the output at OFF. */
static int out_sha256(struct scimg_image *img, uint64_t off, uint64_t len,
		      scimg_sha256_hex out)
{
	const size_t bs = 1u << 20;
	EVP_MD_CTX *mdc = EVP_MD_CTX_new();
	uint8_t *buf = malloc(bs), md[32];
	int ret = 0;

	if (!mdc || !buf || !EVP_DigestInit_ex(mdc, EVP_sha256(), NULL)) {
		ret = scimg_int_err(img->ctx, -ENOMEM, "out of memory");
		goto out;
	}
	while (len) {
		size_t n = len < bs ? (size_t)len : bs;
		ssize_t r = pread(img->file.fd, buf, n, (off_t)off);
		if (r <= 0) {
			ret = scimg_int_err(img->ctx, r < 0 ? -errno : -EIO,
					    "'%s': could not read back the VMDK at offset %llu: %s",
					    img->path, (unsigned long long)off,
					    r < 0 ? strerror(errno) : "end of file");
			goto out;
		}
		EVP_DigestUpdate(mdc, buf, (size_t)r);
		off += (uint64_t)r;
		len -= (uint64_t)r;
		if ((ret = scimg_int_check_cancel(img->ctx)) < 0)
			goto out;
	}
	EVP_DigestFinal_ex(mdc, md, NULL);
	scimg_int_sha256_hex(md, out);
out:
	EVP_MD_CTX_free(mdc);
	free(buf);
	return ret;
}

/* The controller item the OVF declares for the VMDK's adapter type. */
static void controller(const char *ad, const char **desc, const char **sub,
		       const char **type)
{
	static const struct { const char *ad, *desc, *sub, *type; } t[] = {
		{ "ide", "IDE Controller", NULL, "5" },
		{ "lsilogic", "SCSI Controller", "lsilogic", "6" },
		{ "buslogic", "SCSI Controller", "buslogic", "6" },
		{ "lsisas", "SCSI Controller", "lsilogicsas", "6" },
		{ "pvscsi", "SCSI Controller", "VirtualSCSI", "6" },
		{ "legacyESX", "SCSI Controller", "lsilogic", "6" },
	};
	size_t i;

	for (i = 0; i < SCIMG_ARRAY_SIZE(t); i++)
		if (!strcasecmp(ad, t[i].ad))
			break;
	if (i == SCIMG_ARRAY_SIZE(t))
		i = 1;
	*desc = t[i].desc;
	*sub = t[i].sub;
	*type = t[i].type;
}

/* CIM_OperatingSystem id for a vSphere guest id (1 "Other" when unknown). */
static const char *os_cim_id(const char *ostype)
{
	static const struct { const char *vmw, *cim; } t[] = {
		{ "otherGuest", "1" }, { "otherGuest64", "102" },
		{ "otherLinuxGuest", "36" }, { "otherLinux64Guest", "101" },
	};
	size_t i;

	for (i = 0; i < SCIMG_ARRAY_SIZE(t); i++)
		if (!strcmp(ostype, t[i].vmw))
			return t[i].cim;
	return strstr(ostype, "64") ? "102" : "1";
}

static xmlNodePtr text_child(xmlNodePtr parent, xmlNsPtr ns, const char *name,
			     const char *text)
{
	return xmlNewTextChild(parent, ns, BAD_CAST name, BAD_CAST text);
}

struct rasd_kv { const char *k, *v; };

/* An Item of the VirtualHardwareSection; rasd elements in the schema's
 * (alphabetical) order, as the caller lists them. */
static void rasd_item(xmlNodePtr vhs, xmlNsPtr ovf, xmlNsPtr rasd,
		      const struct rasd_kv *kv, size_t n)
{
	xmlNodePtr it = xmlNewChild(vhs, ovf, BAD_CAST "Item", NULL);
	size_t i;

	for (i = 0; i < n; i++)
		if (kv[i].v)
			text_child(it, rasd, kv[i].k, kv[i].v);
}

/* Build the OVF text into *OUT (xmlFree), *LEN bytes. */
static int build_ovf(struct scimg_image *img, struct ova_w *w, const char *vmdk_name,
		     uint64_t vmdk_size, xmlChar **out, int *len)
{
	xmlDocPtr doc = xmlNewDoc(BAD_CAST "1.0");
	xmlNodePtr env, n, sec, vs, vhs, sys;
	xmlNsPtr ovf, rasd, vssd, vmw;
	char b[6][64], cap[32], units[32];
	const char *cdesc, *csub, *ctype;

	if (!doc)
		return scimg_int_err(img->ctx, -ENOMEM, "out of memory");
	env = xmlNewNode(NULL, BAD_CAST "Envelope");
	xmlDocSetRootElement(doc, env);
	xmlSetNs(env, xmlNewNs(env, BAD_CAST OVF_NS, NULL));
	xmlNewNs(env, BAD_CAST "http://schemas.dmtf.org/wbem/wscim/1/common", BAD_CAST "cim");
	ovf = xmlNewNs(env, BAD_CAST OVF_NS, BAD_CAST "ovf");
	rasd = xmlNewNs(env, BAD_CAST "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData",
			BAD_CAST "rasd");
	vmw = xmlNewNs(env, BAD_CAST "http://www.vmware.com/schema/ovf", BAD_CAST "vmw");
	vssd = xmlNewNs(env, BAD_CAST "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_VirtualSystemSettingData",
			BAD_CAST "vssd");
	xmlNewNs(env, BAD_CAST "http://www.w3.org/2001/XMLSchema-instance", BAD_CAST "xsi");
	xmlNewNsProp(env, ovf, BAD_CAST "version", BAD_CAST "1.0");

	sec = xmlNewChild(env, env->ns, BAD_CAST "References", NULL);
	n = xmlNewChild(sec, env->ns, BAD_CAST "File", NULL);
	snprintf(b[0], sizeof(b[0]), "%llu", (unsigned long long)vmdk_size);
	xmlNewNsProp(n, ovf, BAD_CAST "href", BAD_CAST vmdk_name);
	xmlNewNsProp(n, ovf, BAD_CAST "id", BAD_CAST "file1");
	xmlNewNsProp(n, ovf, BAD_CAST "size", BAD_CAST b[0]);

	sec = xmlNewChild(env, env->ns, BAD_CAST "DiskSection", NULL);
	text_child(sec, env->ns, "Info", "Virtual disk information");
	n = xmlNewChild(sec, env->ns, BAD_CAST "Disk", NULL);
	if (img->size % (1u << 20) == 0) {
		snprintf(cap, sizeof(cap), "%llu", (unsigned long long)(img->size >> 20));
		strcpy(units, "byte * 2^20");
	} else {
		snprintf(cap, sizeof(cap), "%llu", (unsigned long long)img->size);
		strcpy(units, "byte");
	}
	snprintf(b[1], sizeof(b[1]), "%llu", (unsigned long long)w->populated);
	xmlNewNsProp(n, ovf, BAD_CAST "capacity", BAD_CAST cap);
	xmlNewNsProp(n, ovf, BAD_CAST "capacityAllocationUnits", BAD_CAST units);
	xmlNewNsProp(n, ovf, BAD_CAST "diskId", BAD_CAST "vmdisk1");
	xmlNewNsProp(n, ovf, BAD_CAST "fileRef", BAD_CAST "file1");
	xmlNewNsProp(n, ovf, BAD_CAST "format", BAD_CAST VMDK_STREAM_URI);
	xmlNewNsProp(n, ovf, BAD_CAST "populatedSize", BAD_CAST b[1]);

	sec = xmlNewChild(env, env->ns, BAD_CAST "NetworkSection", NULL);
	text_child(sec, env->ns, "Info", "The list of logical networks");
	n = xmlNewChild(sec, env->ns, BAD_CAST "Network", NULL);
	xmlNewNsProp(n, ovf, BAD_CAST "name", BAD_CAST "VM Network");
	text_child(n, env->ns, "Description", "The VM Network network");

	vs = xmlNewChild(env, env->ns, BAD_CAST "VirtualSystem", NULL);
	xmlNewNsProp(vs, ovf, BAD_CAST "id", BAD_CAST "vm");
	text_child(vs, env->ns, "Info", "A virtual machine");
	text_child(vs, env->ns, "Name", w->vmname);
	sec = xmlNewChild(vs, env->ns, BAD_CAST "OperatingSystemSection", NULL);
	xmlNewNsProp(sec, ovf, BAD_CAST "id", BAD_CAST os_cim_id(w->ostype));
	xmlNewNsProp(sec, vmw, BAD_CAST "osType", BAD_CAST w->ostype);
	text_child(sec, env->ns, "Info", "The kind of installed guest operating system");

	vhs = xmlNewChild(vs, env->ns, BAD_CAST "VirtualHardwareSection", NULL);
	text_child(vhs, env->ns, "Info", "Virtual hardware requirements");
	sys = xmlNewChild(vhs, env->ns, BAD_CAST "System", NULL);
	snprintf(b[2], sizeof(b[2]), "vmx-%02lu", w->hw);
	text_child(sys, vssd, "ElementName", "Virtual Hardware Family");
	text_child(sys, vssd, "InstanceID", "0");
	text_child(sys, vssd, "VirtualSystemIdentifier", w->vmname);
	text_child(sys, vssd, "VirtualSystemType", b[2]);
	snprintf(b[3], sizeof(b[3]), "%lu", w->cpus);
	snprintf(b[4], sizeof(b[4]), "%lu virtual CPU(s)", w->cpus);
	{
		const struct rasd_kv cpu[] = {
			{ "AllocationUnits", "hertz * 10^6" },
			{ "Description", "Number of Virtual CPUs" },
			{ "ElementName", b[4] }, { "InstanceID", "1" },
			{ "ResourceType", "3" }, { "VirtualQuantity", b[3] },
		};
		rasd_item(vhs, env->ns, rasd, cpu, SCIMG_ARRAY_SIZE(cpu));
	}
	snprintf(b[3], sizeof(b[3]), "%lu", w->memory);
	snprintf(b[5], sizeof(b[5]), "%luMB of memory", w->memory);
	{
		const struct rasd_kv memi[] = {
			{ "AllocationUnits", "byte * 2^20" },
			{ "Description", "Memory Size" },
			{ "ElementName", b[5] }, { "InstanceID", "2" },
			{ "ResourceType", "4" }, { "VirtualQuantity", b[3] },
		};
		rasd_item(vhs, env->ns, rasd, memi, SCIMG_ARRAY_SIZE(memi));
	}
	controller(w->adapter, &cdesc, &csub, &ctype);
	{
		const struct rasd_kv ctl[] = {
			{ "Address", "0" }, { "Description", cdesc },
			{ "ElementName", !strcmp(ctype, "5") ? "IDE 0" : "SCSI controller 0" },
			{ "InstanceID", "3" }, { "ResourceSubType", csub },
			{ "ResourceType", ctype },
		};
		const struct rasd_kv dsk[] = {
			{ "AddressOnParent", "0" }, { "ElementName", "Hard disk 1" },
			{ "HostResource", "ovf:/disk/vmdisk1" }, { "InstanceID", "4" },
			{ "Parent", "3" }, { "ResourceType", "17" },
		};
		const struct rasd_kv net[] = {
			{ "AddressOnParent", "7" }, { "AutomaticAllocation", "true" },
			{ "Connection", "VM Network" },
			{ "Description", "VmxNet3 ethernet adapter on \"VM Network\"" },
			{ "ElementName", "Network adapter 1" }, { "InstanceID", "5" },
			{ "ResourceSubType", "VmxNet3" }, { "ResourceType", "10" },
		};
		rasd_item(vhs, env->ns, rasd, ctl, SCIMG_ARRAY_SIZE(ctl));
		rasd_item(vhs, env->ns, rasd, dsk, SCIMG_ARRAY_SIZE(dsk));
		rasd_item(vhs, env->ns, rasd, net, SCIMG_ARRAY_SIZE(net));
	}
	xmlDocDumpFormatMemoryEnc(doc, out, len, "UTF-8", 1);
	xmlFreeDoc(doc);
	if (!*out || *len <= 0)
		return scimg_int_err(img->ctx, -ENOMEM, "out of memory (OVF descriptor)");
	return 0;
}

static int ova_finish(struct scimg_image *img)
{
	struct ova_w *w = img->priv;
	char ovf_name[OVA_NAME_MAX + 8], mf_name[OVA_NAME_MAX + 8];
	const char *vmdk_name = w->disk_name;
	scimg_sha256_hex h_ovf, h_vmdk;
	uint8_t hdr[512], *ovf = NULL;
	uint64_t mt;
	xmlChar *xml = NULL;
	char mf[2 * (OVA_NAME_MAX + 100)];
	uint64_t vmdk_size, off;
	struct stat st;
	int ret, xlen = 0, mlen;

	if ((ret = scimg_format_vmdk.finish(&w->vmdk)) < 0)
		return ret;
	/* from here on: img->out, the whole tar (absolute offsets) */
	if (fstat(img->file.fd, &st) < 0)
		return scimg_int_err(img->ctx, -errno, "'%s': %s", img->path, strerror(errno));
	if ((uint64_t)st.st_size < OVA_OVF_SPACE + 512)
		return scimg_int_err(img->ctx, -EIO, "'%s': the VMDK writer left no data", img->path);
	vmdk_size = (uint64_t)st.st_size - OVA_OVF_SPACE - 512;
	snprintf(ovf_name, sizeof(ovf_name), "%s.ovf", w->base);
	snprintf(mf_name, sizeof(mf_name), "%s.mf", w->base);
	mt = (uint64_t)(w->mtime > 0 ? w->mtime : 0);

	if ((ret = out_sha256(img, OVA_OVF_SPACE + 512, vmdk_size, h_vmdk)) < 0)
		return ret;
	if ((ret = build_ovf(img, w, vmdk_name, vmdk_size, &xml, &xlen)) < 0)
		return ret;
	if ((size_t)xlen > OVA_OVF_SPACE - 512) {
		ret = scimg_int_err(img->ctx, -ENOSPC, "'%s': the OVF descriptor is %d bytes, more than the %u reserved for it",
				    img->path, xlen, OVA_OVF_SPACE - 512);
		goto out;
	}
	/* pad with white space after the root element to fill its space */
	ovf = malloc(OVA_OVF_SPACE - 512);
	if (!ovf) {
		ret = scimg_int_err(img->ctx, -ENOMEM, "out of memory");
		goto out;
	}
	memset(ovf, ' ', OVA_OVF_SPACE - 512);
	memcpy(ovf, xml, (size_t)xlen);
	ovf[OVA_OVF_SPACE - 513] = '\n';
	if ((ret = scimg_int_sha256_buf(img->ctx, ovf, OVA_OVF_SPACE - 512, h_ovf)) < 0)
		goto out;
	scimg_int_ustar_header(hdr, ovf_name, '0', OVA_OVF_SPACE - 512, mt, 0);
	if ((ret = scimg_int_out_pwrite(img, hdr, 512, 0)) < 0 ||
	    (ret = scimg_int_out_pwrite(img, ovf, OVA_OVF_SPACE - 512, 512)) < 0)
		goto out;
	scimg_int_ustar_header(hdr, vmdk_name, '0', vmdk_size, mt, 0);
	if ((ret = scimg_int_out_pwrite(img, hdr, 512, OVA_OVF_SPACE)) < 0)
		goto out;
	/* manifest after the VMDK's padding */
	off = OVA_OVF_SPACE + 512 + (vmdk_size + 511) / 512 * 512;
	mlen = snprintf(mf, sizeof(mf), "SHA256(%s)= %s\nSHA256(%s)= %s\n",
			ovf_name, h_ovf, vmdk_name, h_vmdk);
	if (mlen < 0 || (size_t)mlen >= sizeof(mf)) {
		ret = scimg_int_err(img->ctx, -EOVERFLOW, "manifest too long");
		goto out;
	}
	if (vmdk_size % 512) {
		uint8_t z[512] = { 0 };
		if ((ret = scimg_int_out_pwrite(img, z, 512 - vmdk_size % 512,
						OVA_OVF_SPACE + 512 + vmdk_size)) < 0)
			goto out;
	}
	scimg_int_ustar_header(hdr, mf_name, '0', (uint64_t)mlen, mt, 0);
	if ((ret = scimg_int_out_pwrite(img, hdr, 512, off)) < 0 ||
	    (ret = scimg_int_out_pwrite(img, mf, (size_t)mlen, off + 512)) < 0)
		goto out;
	/* manifest padding and two zero blocks: the file is extended with
	 * zeros up to a whole 10 KiB tar record, as tar writes */
	off += 512 + ((uint64_t)mlen + 511) / 512 * 512 + 1024;
	off = (off + 10239) / 10240 * 10240;
	ret = scimg_int_out_truncate(img, off);
out:
	free(ovf);
	xmlFree(xml);
	return ret;
}

static void ova_close(struct scimg_image *img)
{
	if (img->writing) {
		struct ova_w *w = img->priv;
		if (!w)
			return;
		if (scimg_format_vmdk.close)
			scimg_format_vmdk.close(&w->vmdk);
		free(w);
		img->priv = NULL;
		return;
	}
	{
		struct ova_r *r = img->priv;
		if (!r)
			return;
		scimg_image_close(r->disk);
		scimg_int_tar_free(&r->tar);
		free(r->ovf_name);
		free(r->disk_name);
		free(r);
		img->priv = NULL;
	}
}

const struct scimg_format scimg_format_ova = {
	.name = "ova",
	.description = "Open Virtualization Appliance: tar of OVF descriptor, streamOptimized VMDK, SHA-256 manifest (vSphere)",
	SCIMG_FORMAT_READER(ova),
	.info = ova_info,
	.create_opts = scimg_int_ova_create_opts,
	SCIMG_FORMAT_WRITER(ova),
	.write_zeroes = ova_write_zeroes,
	SCIMG_FORMAT_COMPRESSED_WRITER(ova),
	.flags = SCIMG_FMT_SEQUENTIAL_WRITE,
};
