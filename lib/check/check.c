/* check/check.c - scimg_check(): the CI gate.
 *
 * For a Supercloud image: tar layout, descriptor (well-formed, schema),
 * member digests and sizes, the guest content digest of every disk, the
 * signature, then the guest compliance of disk 0.  For any other format:
 * container validity (the metadata opens, every extent reads) and the same
 * guest compliance.  Every problem is a finding with a stable id
 * (docs/scimg-check.1); only problems that stop the check itself (a file
 * that cannot be read, an appliance that does not start) are errors.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check-int.h"
#include "package/package.h"
#include "scimg-plugin.h"

struct ck {
	struct scimg_ctx *ctx;
	const struct scimg_check_opts *o;
	json_object *report, *checks, *findings;
	const struct scimg_plugin_profile *prof; /* --provider, or NULL */
	/* the image as check_image() opened it, for the later steps (the
	 * disk signature, the provider's rules): opened once */
	struct scimg_image *img;
};

static void check_result(struct ck *c, const char *name, const char *result)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "name", json_object_new_string(name));
	json_object_object_add(o, "result", json_object_new_string(result));
	json_object_array_add(c->checks, o);
}

static size_t nerrors(json_object *findings)
{
	size_t i, n = 0;

	for (i = 0; i < json_object_array_length(findings); i++) {
		json_object *f = json_object_array_get_idx(findings, i), *s;
		if (json_object_object_get_ex(f, "severity", &s) &&
		    !strcmp(json_object_get_string(s), "error"))
			n++;
	}
	return n;
}

/* Run a check step: record pass/fail by the number of new errors. */
#define STEP_BEGIN(c) size_t step_errs_ = nerrors((c)->findings)
#define STEP_END(c, name) \
	check_result((c), (name), nerrors((c)->findings) > step_errs_ ? "fail" : "pass")

static json_object *jget(json_object *o, const char *k)
{
	json_object *v;
	return o && json_object_object_get_ex(o, k, &v) ? v : NULL;
}

static const char *jstr(json_object *o, const char *k)
{
	json_object *v = jget(o, k);
	return v ? json_object_get_string(v) : "";
}

/* Errors that mean "could not check" rather than "the image is bad". */
static int is_io_error(int err)
{
	return err == -ENOENT || err == -EACCES || err == -EPERM || err == -EIO ||
	       err == -ENOMEM || err == -EISDIR || err == -ECANCELED || err == -ENOSPC ||
	       err == -EROFS || err == -EMFILE;
}

/* ---- guest ---------------------------------------------------------- */

static int tmp_raw(struct ck *c, const char *src, const char *fmt, char **out)
{
	struct scimg_convert_opts co;
	char *dir, *p;
	int ret;

	*out = NULL;
	if ((ret = scimg_int_tmp_dir(c->ctx, "check-disk", NULL, "/tmp", &dir)) < 0)
		return ret;
	p = malloc(strlen(dir) + 16);
	if (!p) {
		rmdir(dir);
		free(dir);
		return scimg_int_err(c->ctx, -ENOMEM, "out of memory");
	}
	sprintf(p, "%s/disk.raw", dir);
	memset(&co, 0, sizeof(co));
	co.size = sizeof(co);
	co.src = src;
	co.src_format = fmt;
	co.dst = p;
	co.dst_format = "raw";
	co.sparse_size = 4096;
	co.threads = 1;
	ret = scimg_convert(c->ctx, &co);
	if (ret < 0) {
		rmdir(dir);
		free(dir);
		free(p);
		return ret;
	}
	free(dir);
	*out = p;
	return 0;
}

static void tmp_raw_free(char *p)
{
	char *slash;

	if (!p)
		return;
	unlink(p);
	slash = strrchr(p, '/');
	if (slash) {
		*slash = '\0';
		rmdir(p);
	}
	free(p);
}

/* Does the start of the guest content carry a partition table or a
 * filesystem/volume signature?  0 when it certainly does not (then there is
 * no operating system for libguestfs to find, and no appliance is
 * started), 1 when it does or cannot be told, < 0 on error. */
static int has_disk_signature(struct ck *c, const char *path, const char *format)
{
	struct scimg_image *img = c->img;
	const size_t n = 72 * 1024;
	uint8_t *b;
	int ret;

	if (!img && (ret = scimg_image_open(c->ctx, path, format, &img)) < 0)
		return ret;
	b = calloc(1, n);
	if (!b) {
		if (img != c->img)
			scimg_image_close(img);
		return scimg_int_err(c->ctx, -ENOMEM, "out of memory");
	}
	ret = scimg_image_pread(img, b, img->size < n ? (size_t)img->size : n, 0);
	if (img != c->img)
		scimg_image_close(img);
	if (ret < 0) {
		free(b);
		return ret;
	}
	ret = (b[510] == 0x55 && b[511] == 0xaa) ||           /* MBR, protective MBR */
	      !memcmp(b + 512, "EFI PART", 8) ||              /* GPT */
	      (b[1080] == 0x53 && b[1081] == 0xef) ||         /* ext2/3/4 */
	      !memcmp(b, "XFSB", 4) ||                        /* xfs */
	      !memcmp(b + 65536 + 64, "_BHRfS_M", 8) ||       /* btrfs */
	      !memcmp(b + 512, "LABELONE", 8) ||              /* LVM PV */
	      !memcmp(b, "LUKS\xba\xbe", 6) ||              /* LUKS */
	      !memcmp(b + 32769, "CD001", 5) ||               /* ISO 9660 */
	      !memcmp(b + 3, "NTFS    ", 8) ||                /* NTFS */
	      !memcmp(b + 54, "FAT", 3) || !memcmp(b + 82, "FAT", 3) || /* FAT */
	      !memcmp(b + 4086, "SWAPSPACE2", 10) ||          /* swap */
	      !memcmp(b + 1024, "\x10\x20\xf5\xf2", 4);      /* f2fs */
	free(b);
	return ret;
}

/* Guest compliance of the disk PATH (FORMAT), appended to the report. */
static int guest_step(struct ck *c, const char *path, const char *format)
{
	struct scimg_guest_opts go = {
		.notice = c->o->notice,
		.notice_opaque = c->o->notice_opaque,
		.extra_drivers = c->prof ? c->prof->guest_modules : NULL,
	};
	json_object *facts = NULL, *f;
	char *raw = NULL;
	size_t i;
	int ret;

	if (c->o->container_only) {
		check_result(c, "guest", "skipped");
		return 0;
	}
	if ((ret = has_disk_signature(c, path, format)) < 0)
		return ret;
	if (ret == 0) {
		json_object *g = json_object_new_object();
		json_object_object_add(g, "inspected", json_object_new_boolean(1));
		json_object_object_add(c->report, "guest", g);
		scimg_int_finding(c->findings, "guest-no-os", "error",
				  "no operating system: the disk has no partition table and no filesystem signature");
		check_result(c, "guest", "fail");
		return 0;
	}
	/* qemu reads raw directly; everything else goes through scimg's own
	 * reader into a sparse temporary raw file, so the guest is checked
	 * exactly as scimg reads it */
	if (strcmp(format, "raw") != 0) {
		if ((ret = tmp_raw(c, path, format, &raw)) < 0)
			return ret;
	}
	ret = scimg_int_guest_check(c->ctx, raw ? raw : path, "raw", &go, &facts);
	tmp_raw_free(raw);
	if (ret < 0)
		return ret;
	json_object_object_add(c->report, "guest", json_object_get(jget(facts, "guest")));
	json_object_object_add(c->report, "boot", json_object_get(jget(facts, "boot")));
	f = jget(facts, "findings");
	STEP_BEGIN(c);
	for (i = 0; i < json_object_array_length(f); i++)
		json_object_array_add(c->findings, json_object_get(json_object_array_get_idx(f, i)));
	STEP_END(c, "guest");
	json_object_put(facts);
	return 0;
}

/* ---- SCI ------------------------------------------------------------ */

static int sci_signature(struct ck *c, struct scimg_source *src, const struct sci_tar *t,
			 const char *xml, size_t xlen)
{
	const struct sci_member *sm = scimg_int_tar_find(t, SCI_SIGNATURE);
	json_object *sig = json_object_new_object();
	char *buf = NULL, *why = NULL, *signer = NULL;
	const char *state;
	int ret = 0, r;

	STEP_BEGIN(c);
	json_object_object_add(c->report, "signature", sig);
	json_object_object_add(sig, "present", json_object_new_boolean(sm != NULL));
	if (!sm) {
		json_object_object_add(sig, "state", json_object_new_string("absent"));
		if (!c->o->trust) {
			check_result(c, "signature", "skipped");
			goto out;
		}
		state = "absent";
		scimg_int_finding(c->findings, "signature-missing", "error",
				  "the image has no %s but --trust was given", SCI_SIGNATURE);
		goto done;
	}
	if ((ret = scimg_int_member_read(src, sm, &buf)) < 0) {
		if (is_io_error(ret))
			goto out;
		scimg_int_finding(c->findings, "signature-invalid", "error", "%s", scimg_ctx_errmsg(c->ctx));
		scimg_ctx_clear_error(c->ctx);
		ret = 0;
		state = "bad";
		goto done;
	}
	r = scimg_int_verify(c->ctx, xml, xlen, buf, (size_t)sm->size, c->o->trust, &why, &signer);
	if (r < 0) {
		ret = r;
		goto out;
	}
	if (signer)
		json_object_object_add(sig, "signer", json_object_new_string(signer));
	switch (r) {
	case SCI_SIG_OK:
		state = "trusted";
		break;
	case SCI_SIG_UNCHECKED:
		state = "unchecked";
		scimg_int_finding(c->findings, "signature-unchecked", "warning",
				  "%s is a valid signature by '%s', but no --trust certificate was given to check the signer",
				  SCI_SIGNATURE, signer ? signer : "?");
		break;
	case SCI_SIG_UNTRUSTED:
		state = "untrusted";
		scimg_int_finding(c->findings, "signature-untrusted", "error", "%s: %s",
				  SCI_SIGNATURE, why ? why : "signer not trusted");
		break;
	default:
		state = "bad";
		scimg_int_finding(c->findings, "signature-invalid", "error", "%s: %s",
				  SCI_SIGNATURE, why ? why : "invalid");
		break;
	}
done:
	json_object_object_add(sig, "state", json_object_new_string(state));
	STEP_END(c, "signature");
out:
	free(buf);
	free(why);
	free(signer);
	return ret;
}

static int sci_disks(struct ck *c, struct scimg_source *src, const struct sci_tar *t,
		     json_object *desc)
{
	json_object *disks = jget(desc, "disks"), *files = jget(desc, "files");
	struct scimg_image fake;
	struct scimg_chain chain;
	size_t i, ndisk_members = 0;
	int ret = 0;

	STEP_BEGIN(c);
	for (i = 1; i < t->n; i++)
		if (!strncmp(t->m[i].name, "disk", 4))
			ndisk_members++;
	if (json_object_array_length(disks) != ndisk_members)
		scimg_int_finding(c->findings, "descriptor-disks", "error",
				  "the descriptor lists %zu disk(s), the tar has %zu disk member(s)",
				  json_object_array_length(disks), ndisk_members);
	/* a parent image for scimg_int_open_member */
	memset(&fake, 0, sizeof(fake));
	memset(&chain, 0, sizeof(chain));
	fake.ctx = c->ctx;
	fake.path = (char *)c->o->path;
	fake.src = src;
	fake.chain = &chain; /* the members' files are noted here */
	for (i = 0; i < json_object_array_length(disks); i++) {
		json_object *d = json_object_array_get_idx(disks, i);
		const char *member = jstr(d, "member"), *format = jstr(d, "format");
		const struct sci_member *m = scimg_int_tar_find(t, member);
		struct scimg_image *img = NULL;
		scimg_sha256_hex h;

		if ((uint64_t)json_object_get_int64(jget(d, "index")) != i)
			scimg_int_finding(c->findings, "descriptor-disks", "error",
					  "disk %zu of the descriptor has index %s", i, jstr(d, "index"));
		if (!m) {
			scimg_int_finding(c->findings, "descriptor-disks", "error",
					  "the descriptor names disk member '%s', which the tar does not have",
					  member);
			continue;
		}
		if (json_object_get_uint64(jget(d, "member-size")) != m->size)
			scimg_int_finding(c->findings, "disk-member-size", "error",
					  "%s is %llu bytes, the descriptor says %s", member,
					  (unsigned long long)m->size, jstr(d, "member-size"));
		if ((ret = scimg_int_sha256_source(src, m->offset, m->size, h)) < 0)
			goto out;
		if (strcmp(h, jstr(d, "member-sha256")) != 0)
			scimg_int_finding(c->findings, "disk-member-digest", "error",
					  "%s: SHA-256 of the member is %s, the descriptor says %s",
					  member, h, jstr(d, "member-sha256"));
		ret = scimg_int_open_tar_member(&fake, m->offset, m->size, member, format, &img);
		if (ret < 0) {
			if (ret == -ENOMEM || ret == -ECANCELED)
				goto out;
			scimg_int_finding(c->findings, "disk-container", "error", "%s: %s",
					  member, scimg_ctx_errmsg(c->ctx));
			scimg_ctx_clear_error(c->ctx);
			ret = 0;
			continue;
		}
		if (img->size != json_object_get_uint64(jget(d, "virtual-size")))
			scimg_int_finding(c->findings, "disk-size", "error",
					  "%s: virtual size is %llu, the descriptor says %s", member,
					  (unsigned long long)img->size, jstr(d, "virtual-size"));
		ret = scimg_int_sha256_image(img, h);
		scimg_image_close(img);
		if (ret < 0) {
			if (ret == -ENOMEM || ret == -ECANCELED)
				goto out;
			scimg_int_finding(c->findings, "disk-container", "error", "%s: %s",
					  member, scimg_ctx_errmsg(c->ctx));
			scimg_ctx_clear_error(c->ctx);
			ret = 0;
			continue;
		}
		if (strcmp(h, jstr(d, "content-sha256")) != 0)
			scimg_int_finding(c->findings, "disk-content-digest", "error",
					  "%s: SHA-256 of the guest content is %s, the descriptor says %s",
					  member, h, jstr(d, "content-sha256"));
	}
	for (i = 0; i < json_object_array_length(files); i++) {
		json_object *f = json_object_array_get_idx(files, i);
		const char *member = jstr(f, "member");
		const struct sci_member *m = scimg_int_tar_find(t, member);
		scimg_sha256_hex h;

		if (!m) {
			scimg_int_finding(c->findings, "descriptor-files", "error",
					  "the descriptor names member '%s', which the tar does not have", member);
			continue;
		}
		if ((ret = scimg_int_sha256_source(src, m->offset, m->size, h)) < 0)
			goto out;
		if (m->size != json_object_get_uint64(jget(f, "size")) ||
		    strcmp(h, jstr(f, "sha256")) != 0)
			scimg_int_finding(c->findings, "file-digest", "error",
					  "%s: %llu bytes with SHA-256 %s, the descriptor says %s bytes with %s",
					  member, (unsigned long long)m->size, h, jstr(f, "size"),
					  jstr(f, "sha256"));
	}
	if (!scimg_int_tar_find(t, SCI_XLCFG) ||
	    json_object_array_length(files) == 0)
		scimg_int_finding(c->findings, "descriptor-files", "error",
				  "the descriptor does not cover %s", SCI_XLCFG);
	STEP_END(c, "digests");
out:
	free(chain.ids);
	return ret;
}

static int check_sci(struct ck *c)
{
	struct scimg_source *src = NULL;
	struct sci_tar t = { 0 };
	json_object *desc = NULL;
	char *xml = NULL;
	int ret, kind = 0;

	if ((ret = scimg_int_source_open(c->ctx, c->o->path, &src)) < 0)
		return ret;
	ret = scimg_int_tar_list(src, &t);
	if (ret < 0) {
		if (is_io_error(ret) && ret != -EPERM)
			goto out;
		scimg_int_finding(c->findings, "sci-tar", "error", "%s", scimg_ctx_errmsg(c->ctx));
		scimg_ctx_clear_error(c->ctx);
		check_result(c, "layout", "fail");
		ret = 0;
		goto out;
	}
	if (scimg_int_sci_layout(c->ctx, c->o->path, &t) < 0) {
		scimg_int_finding(c->findings, "sci-layout", "error", "%s", scimg_ctx_errmsg(c->ctx));
		scimg_ctx_clear_error(c->ctx);
		check_result(c, "layout", "fail");
		goto out;
	}
	check_result(c, "layout", "pass");
	if ((ret = scimg_int_member_read(src, &t.m[0], &xml)) < 0) {
		if (is_io_error(ret))
			goto out;
		scimg_int_finding(c->findings, "descriptor-xml", "error", "%s", scimg_ctx_errmsg(c->ctx));
		scimg_ctx_clear_error(c->ctx);
		check_result(c, "descriptor", "fail");
		ret = 0;
		goto out;
	}
	ret = scimg_int_desc_parse(c->ctx, SCI_DESCRIPTOR, xml, (size_t)t.m[0].size, &desc, &kind);
	if (ret < 0) {
		if (ret == -ENOMEM)
			goto out;
		scimg_int_finding(c->findings,
				  kind == SCI_DESC_ERR_SCHEMA ? "descriptor-schema" : "descriptor-xml",
				  "error", "%s", scimg_ctx_errmsg(c->ctx));
		scimg_ctx_clear_error(c->ctx);
		check_result(c, "descriptor", "fail");
		ret = 0;
		/* the signature still says whether the descriptor was edited */
		ret = sci_signature(c, src, &t, xml, (size_t)t.m[0].size);
		goto out;
	}
	check_result(c, "descriptor", "pass");
	json_object_object_add(c->report, "descriptor", json_object_get(desc));
	if ((ret = sci_signature(c, src, &t, xml, (size_t)t.m[0].size)) < 0)
		goto out;
	if ((ret = sci_disks(c, src, &t, desc)) < 0)
		goto out;
	/* the guest of disk 0, read through the SCI reader */
	ret = guest_step(c, c->o->path, "sci");
out:
	json_object_put(desc);
	free(xml);
	scimg_int_tar_free(&t);
	scimg_int_source_close(src);
	return ret;
}

/* ---- any other format ------------------------------------------------- */

static int check_image(struct ck *c, const char *format)
{
	struct scimg_image *img = NULL;
	scimg_sha256_hex h;
	int ret;

	ret = scimg_image_open(c->ctx, c->o->path, format, &img);
	if (ret < 0) {
		if (is_io_error(ret))
			return ret;
		scimg_int_finding(c->findings, "container-invalid", "error", "%s",
				  scimg_ctx_errmsg(c->ctx));
		scimg_ctx_clear_error(c->ctx);
		check_result(c, "container", "fail");
		return 0;
	}
	json_object_object_add(c->report, "format",
			       json_object_new_string(scimg_int_qemu_format_name(scimg_image_format(img))));
	json_object_object_add(c->report, "virtual-size", json_object_new_uint64(scimg_image_size(img)));
	if (scimg_image_raw_fallback(img))
		scimg_int_finding(c->findings, "container-raw-fallback", "warning",
				  "no format matched; the file was read as a raw disk");
	/* every extent must read: hash the guest content on the way */
	ret = scimg_int_sha256_image(img, h);
	c->img = img; /* closed by scimg_check() */
	if (ret < 0) {
		if (ret == -ENOMEM || ret == -ECANCELED)
			return ret;
		scimg_int_finding(c->findings, "container-extent", "error", "%s",
				  scimg_ctx_errmsg(c->ctx));
		scimg_ctx_clear_error(c->ctx);
		check_result(c, "container", "fail");
	} else {
		json_object_object_add(c->report, "content-sha256", json_object_new_string(h));
		check_result(c, "container", "pass");
	}
	/* the metadata's consistency, whether or not every extent read */
	if (!strcmp(json_object_get_string(jget(c->report, "format")), "qcow2")) {
		int r2;
		STEP_BEGIN(c);
		r2 = scimg_int_check_qcow2(c->ctx, c->o->path, c->findings, c->report);
		if (r2 < 0)
			return r2;
		STEP_END(c, "refcounts");
	}
	if (!strcmp(json_object_get_string(jget(c->report, "format")), "vmdk")) {
		int r2;
		STEP_BEGIN(c);
		r2 = scimg_int_check_vmdk(c->ctx, c->o->path, c->findings);
		if (r2 < 0)
			return r2;
		STEP_END(c, "grain-directory");
	}
	if (!strcmp(json_object_get_string(jget(c->report, "format")), "vpc")) {
		int r2;
		STEP_BEGIN(c);
		r2 = scimg_int_check_vhd(c->ctx, c->o->path, c->findings);
		if (r2 < 0)
			return r2;
		STEP_END(c, "bat");
	}
	if (ret < 0)
		return 0;
	return guest_step(c, c->o->path, format ? format : json_object_get_string(jget(c->report, "format")));
}

/* ---- provider profiles (--provider) ------------------------------------ */

/* Supercloud-only guest findings: for a provider they are warnings. */
static const char *const supercloud_only[] = {
	"guest-driver-missing", "guest-kernel-pvgrub2", "guest-no-xen-pv-boot",
	"guest-cmdline-console", "guest-grub-cfg-linux16",
};

static void demote_supercloud(struct ck *c)
{
	size_t i, j;

	for (i = 0; i < json_object_array_length(c->findings); i++) {
		json_object *f = json_object_array_get_idx(c->findings, i);
		const char *id = jstr(f, "id");
		for (j = 0; j < SCIMG_ARRAY_SIZE(supercloud_only); j++)
			if (!strcmp(id, supercloud_only[j]))
				json_object_object_add(f, "severity", json_object_new_string("warning"));
	}
}

/* Does the kernel command line ARGS have console=DEV (with options)? */
static int has_console(const char *args, const char *dev)
{
	size_t n = strlen(dev);
	const char *p = args;

	while (p && (p = strstr(p, "console=")) != NULL) {
		if ((p == args || p[-1] == ' ' || p[-1] == '\t') &&
		    !strncmp(p + 8, dev, n) && (p[8 + n] == '\0' || p[8 + n] == ',' ||
						p[8 + n] == ' ' || p[8 + n] == '\t'))
			return 1;
		p += 8;
	}
	return 0;
}

/* The guest rules of the profile, from the guest facts in the report. */
static void provider_guest(struct ck *c)
{
	const struct scimg_plugin_profile *p = c->prof;
	json_object *g = jget(c->report, "guest"), *ks = jget(g, "kernels"), *def = NULL, *drv;
	const char *cmdline = jstr(jget(c->report, "boot"), "cmdline");
	size_t i;

	for (i = 0; ks && i < json_object_array_length(ks); i++) {
		json_object *k = json_object_array_get_idx(ks, i);
		if (json_object_get_boolean(jget(k, "default")))
			def = k;
	}
	if (!def) {
		if (p->guest_modules || p->console)
			scimg_int_finding(c->findings, "provider-guest-unchecked", "warning",
					  "provider profile '%s': the guest's kernel could not be inspected%s; its drivers and console are not checked",
					  p->name, c->o->container_only ? " (--container-only)" : "");
		return;
	}
	drv = jget(def, "drivers");
	for (i = 0; p->guest_modules && p->guest_modules[i] && i < 64; i++) {
		const char *m = p->guest_modules[i], *w = jstr(drv, m);
		if (!strcmp(w, "builtin") || !strcmp(w, "initramfs"))
			continue;
		if (jget(def, "initramfs-error"))
			w = "unreadable";
		scimg_int_finding(c->findings, "provider-guest-module", "error",
				  "provider profile '%s': default kernel %s: %s is not in its initramfs%s",
				  p->name, jstr(def, "version"), m,
				  !strcmp(w, "module") ? " (the module is on the root filesystem only)" :
				  !strcmp(w, "unreadable") ? " (the initramfs could not be listed)" :
				  " (and the kernel has no such module)");
	}
	if (p->console && !has_console(cmdline, p->console))
		scimg_int_finding(c->findings, "provider-console", "warning",
				  "provider profile '%s': the default entry's kernel command line has no console=%s ('%s')",
				  p->name, p->console, cmdline);
}

/* Format, size rules and the profile's own check, on the image as scimg
 * opens it; then the guest rules. */
static int provider_step(struct ck *c, const char *format)
{
	struct scimg_image *img = c->img;
	json_object *pf;
	size_t i;
	int ret;

	demote_supercloud(c);
	if (!img && scimg_image_open(c->ctx, c->o->path, format, &img) < 0) {
		/* the container findings say why */
		scimg_ctx_clear_error(c->ctx);
		check_result(c, "provider", "skipped");
		return 0;
	}
	pf = json_object_new_array();
	if (!pf) {
		if (img != c->img)
			scimg_image_close(img);
		return scimg_int_err(c->ctx, -ENOMEM, "out of memory");
	}
	ret = scimg_profile_check(c->ctx, c->prof->name, img, pf);
	if (img != c->img)
		scimg_image_close(img);
	if (ret < 0) {
		json_object_put(pf);
		return ret;
	}
	{
		STEP_BEGIN(c);
		for (i = 0; i < json_object_array_length(pf); i++) {
			json_object *f = json_object_array_get_idx(pf, i);
			char id[96];
			snprintf(id, sizeof(id), "provider-%s", jstr(f, "id"));
			scimg_int_finding(c->findings, id, "error", "%s", jstr(f, "message"));
		}
		provider_guest(c);
		STEP_END(c, "provider");
	}
	json_object_put(pf);
	return 0;
}

int scimg_check(struct scimg_ctx *ctx, const struct scimg_check_opts *opts,
		json_object **report)
{
	struct scimg_check_opts oc;
	const struct scimg_check_opts *o = &oc;
	struct ck c;
	struct scimg_image *probe = NULL;
	const char *fmt;
	int ret;

	*report = NULL;
	scimg_ctx_clear_error(ctx);
	/* the caller's struct may be older (smaller) than ours */
	ret = scimg_int_opts_struct_copy(ctx, &oc, sizeof(oc), opts, "scimg_check_opts");
	if (ret < 0)
		return ret;
	fmt = o->format;
	memset(&c, 0, sizeof(c));
	c.ctx = ctx;
	c.o = o;
	c.report = json_object_new_object();
	c.checks = json_object_new_array();
	c.findings = json_object_new_array();
	json_object_object_add(c.report, "check-version", json_object_new_int(1));
	json_object_object_add(c.report, "image", json_object_new_string(o->path));
	/* qemu-img check's keys (ImageCheck) */
	json_object_object_add(c.report, "filename", json_object_new_string(o->path));
	json_object_object_add(c.report, "check-errors", json_object_new_int(0));
	if (o->provider) {
		json_object *pi = NULL;
		/* an unknown name is an error naming the known ones */
		if ((ret = scimg_profile_info(ctx, o->provider, &pi)) < 0)
			goto fail;
		json_object_object_add(c.report, "provider", pi);
		c.prof = scimg_int_profile_find(o->provider, NULL);
	}
	if (!fmt) {
		/* probe without opening the whole thing: a broken SCI must still
		 * be recognised as an SCI to be checked as one */
		struct scimg_source *src;
		uint8_t head[512];
		if ((ret = scimg_int_source_open(ctx, o->path, &src)) < 0)
			goto fail;
		if (src->size >= 512 &&
		    scimg_int_source_read(src, head, sizeof(head), 0, "header") == 0 &&
		    scimg_int_ustar_magic(head) &&
		    (memcmp(head, SCI_DESCRIPTOR, sizeof(SCI_DESCRIPTOR)) == 0 || head[156] == 'x'))
			fmt = "sci";
		else if (strlen(o->path) > 4 && !strcmp(o->path + strlen(o->path) - 4, ".sci"))
			fmt = "sci"; /* named .sci: check it as one */
		scimg_int_source_close(src);
	}
	if (fmt && !strcmp(fmt, "sci")) {
		json_object_object_add(c.report, "format", json_object_new_string("sci"));
		ret = check_sci(&c);
	} else {
		ret = check_image(&c, fmt);
	}
	(void)probe;
	if (ret == 0 && c.prof)
		ret = provider_step(&c, fmt);
	if (c.img)
		scimg_image_close(c.img);
	c.img = NULL;
	if (ret < 0)
		goto fail;
	json_object_object_add(c.report, "compliant", json_object_new_boolean(nerrors(c.findings) == 0));
	json_object_object_add(c.report, "checks", c.checks);
	json_object_object_add(c.report, "findings", c.findings);
	scimg_int_json_clean(c.report);
	*report = c.report;
	return nerrors(c.findings) ? 1 : 0;
fail:
	json_object_put(c.report);
	json_object_put(c.checks);
	json_object_put(c.findings);
	return ret;
}
