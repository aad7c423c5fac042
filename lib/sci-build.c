/* sci-build.c - scimg convert -O sci: build a Supercloud image.  An
 * operation on top of the layers it uses (package/: the container; bootfix/:
 * the guest fix; check/: the guest description), kept out of package/ so
 * that no lib/ subdirectory includes another that includes it back.
 *
 *   source (any readable format)
 *     -> working disk (qcow2 v3, not flushed) in a temporary directory
 *        beside OUT; the SHA-256 of the source file starts in a thread of
 *        its own and runs beside the copy and the appliance
 *     -> inject-drivers on it (lib/bootfix), which also describes the fixed
 *        guest for the descriptor with check's code (lib/check/guest.c) in
 *        the same appliance launch (guest=inspect: a read-only launch)
 *     -> xl.cfg; the descriptor with the digests still running as
 *        DIGEST_PENDING (same length as the final one)
 *     -> tar written to a temporary file beside OUT: the descriptor, the
 *        disk member (its bytes hashed as they are copied: member-sha256)
 *        while the fixed disk's content-sha256 runs in a thread, xl.cfg;
 *        then, with every digest known, the optional CMS signature of the
 *        final descriptor, which is written over the pending one in place
 *     -> flushed, renamed into place.
 * So no digest is a pass of its own on the way (issue 16: the build costs
 * at most inject-drivers plus the copy).  On any failure or cancel, the
 * digest threads are stopped and joined, the working directory and the
 * temporary file are removed and nothing is left at OUT.
 */
#include <fcntl.h>
#include <limits.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "package/package.h"
#include "check/check-int.h"
#include "bootfix/bootfix-int.h"

static const char *const sci_create_opts[] = {
	"name", "sign-key", "sign-cert", "guest", "disk-format", "verify", "verify-expect", NULL,
};

/* -p of convert -O sci: the copy's data phases, the guest fix's steps, the
 * packaging, and "done" (with the copy's numbers) only at the very end */
struct relay {
	const struct scimg_convert_opts *o;
	struct scimg_progress last;  /* of the copy */
};

struct build {
	struct scimg_ctx *ctx;
	const struct scimg_convert_opts *o;
	struct scimg_opts opts;
	char *workdir;   /* temporary directory beside dst */
	char *workdisk;  /* workdir/disk0.<fmt> */
	char *tmpout;    /* temporary package beside dst */
	int outfd;
	const char *disk_format;
	json_object *desc;
	json_object *facts; /* the fixed guest's facts, from inject-drivers' appliance */
	struct relay relay;
	/* digests that run beside other work (lib/package/digest.c): the
	 * input's, from its image's byte source, while the working disk is
	 * made and fixed; the fixed disk's content while the tar is written */
	struct scimg_image *srcimg;
	struct scimg_sha256_job *srcjob;
	struct scimg_image *diskimg;
	struct scimg_sha256_job *contentjob;
};

static json_object *jget(json_object *o, const char *k)
{
	json_object *v;
	return o && json_object_object_get_ex(o, k, &v) ? v : NULL;
}

static int name_ok(const char *s)
{
	size_t n = 0;

	for (; *s; s++, n++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '.' || *s == '_' || *s == '-' || *s == '+'))
			return 0;
	return n > 0 && n <= 64;
}

/* Default name: the output file name without directory and ".sci", with
 * characters xl does not like replaced. */
static char *default_name(const char *dst)
{
	const char *b = strrchr(dst, '/');
	char *n;
	size_t l, i;

	b = b ? b + 1 : dst;
	l = strlen(b);
	if (l > 4 && !strcmp(b + l - 4, ".sci"))
		l -= 4;
	if (l > 64)
		l = 64;
	n = strndup(b, l ? l : 1);
	if (!n)
		return NULL;
	if (!l)
		n[0] = 'x';
	for (i = 0; n[i]; i++)
		if (!name_ok((char[]){ n[i], 0 }))
			n[i] = '-';
	return n;
}

/* Creation time: SOURCE_DATE_EPOCH when set (reproducible builds). */
static time_t build_time(void)
{
	const char *sde = getenv("SOURCE_DATE_EPOCH");
	return sde && *sde ? (time_t)strtoll(sde, NULL, 10) : time(NULL);
}

static void iso_time(char *buf, size_t len)
{
	time_t t = build_time();
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* ---- steps ------------------------------------------------------------ */

static int make_workdir(struct build *b)
{
	const char *dst = b->o->dst;
	size_t n;
	int ret;

	if (!*dst || dst[strlen(dst) - 1] == '/')
		return scimg_int_err(b->ctx, -EISDIR, "'%s': output must be a file name", dst);
	if ((ret = scimg_int_tmp_beside(b->ctx, dst, "work", 1, &b->workdir, NULL)) < 0)
		return ret;
	n = strlen(b->workdir) + 32;
	b->workdisk = malloc(n);
	if (!b->workdisk)
		return scimg_int_err(b->ctx, -ENOMEM, "out of memory");
	snprintf(b->workdisk, n, "%s/disk0.%s", b->workdir, b->disk_format);
	if ((ret = scimg_int_tmp_beside(b->ctx, b->o->dst, "out", 0, &b->tmpout, &b->outfd)) < 0)
		return ret;
	fchmod(b->outfd, 0644);
	return 0;
}

static void cleanup(struct build *b, int keep_out)
{
	/* no thread outlives the build: stop them before their images go */
	scimg_int_sha256_abort(b->srcjob);
	scimg_int_sha256_abort(b->contentjob);
	b->srcjob = b->contentjob = NULL;
	scimg_image_close(b->srcimg);
	scimg_image_close(b->diskimg);
	b->srcimg = b->diskimg = NULL;
	if (b->workdisk)
		unlink(b->workdisk);
	if (b->workdir)
		rmdir(b->workdir);
	if (b->outfd >= 0)
		close(b->outfd);
	if (b->tmpout && !keep_out)
		unlink(b->tmpout);
	free(b->workdir);
	free(b->workdisk);
	free(b->tmpout);
	json_object_put(b->facts);
	b->facts = NULL;
	scimg_int_opts_free(&b->opts);
	json_object_put(b->desc);
}

/* The last component of a path or of a URL's path (without query or
 * fragment); malloc'd. */
static char *origin_name(const char *src)
{
	const char *p = src, *slash, *end;
	char *r;

	if (strstr(src, "://")) {
		p = strstr(src, "://") + 3;
		p += strcspn(p, "/?#");      /* skip user info, host, port */
		end = p + strcspn(p, "?#");
	} else {
		end = p + strlen(p);
	}
	while (end > p && end[-1] == '/')
		end--;
	for (slash = end; slash > p && slash[-1] != '/'; slash--)
		;
	r = strndup(slash, (size_t)(end - slash));
	if (r && !*r) {
		free(r);
		r = strdup("-");
	}
	return r;
}

/* The digest fields' values until the digests are known: the same length,
 * so the descriptor written with them is as long as the final one. */
#define DIGEST_PENDING "0000000000000000000000000000000000000000000000000000000000000000"

/* Source facts: format, subformat, size and origin of the file; the digest
 * of its bytes is started in a thread of its own (b->srcjob) and filled in
 * by source_digest_done(). */
static int source_facts(struct build *b, json_object *src)
{
	struct scimg_image *img = NULL;
	json_object *info = NULL, *spec, *sub;
	char *origin;
	int ret;

	if ((ret = scimg_image_open_opts(b->ctx, b->o->src, b->o->src_format,
					  b->o->src_options, &img)) < 0)
		return ret;
	json_object_object_add(src, "format", json_object_new_string(scimg_image_format(img)));
	/* scimg's details (VHD, VHDX subformat; a plugin's type), else
	 * qemu-img's format-specific data (VMDK create-type) */
	if (scimg_image_info(img, &info) == 0) {
		spec = jget(info, "scimg");
		if ((sub = jget(spec, "subformat")) ||
		    (sub = jget(jget(jget(info, "format-specific"), "data"), "create-type")) ||
		    (sub = jget(spec, "type")))
			if (json_object_is_type(sub, json_object_get_type(sub)) &&
			    json_object_get_type(sub) == json_type_string)
				json_object_object_add(src, "subformat",
						       json_object_new_string(json_object_get_string(sub)));
	}
	json_object_put(info);
	json_object_object_add(src, "size", json_object_new_uint64(img->src->size));
	/* the image stays open for the digest's thread (cleanup() closes it) */
	b->srcimg = img;
	if ((ret = scimg_int_sha256_source_start(img->src, 0, img->src->size, &b->srcjob)) < 0)
		return ret;
	json_object_object_add(src, "sha256", json_object_new_string(DIGEST_PENDING));
	/* Only the base name: the host's directories (or a URL's host,
	 * credentials and query, e.g. a signed URL's token) are nobody's
	 * business in a signed package, and would make two builds of the same
	 * image differ. */
	origin = origin_name(b->o->src);
	if (!origin)
		return scimg_int_err(b->ctx, -ENOMEM, "out of memory");
	json_object_object_add(src, "origin", json_object_new_string(origin));
	free(origin);
	return 0;
}

static int source_digest_done(struct build *b, json_object *src)
{
	scimg_sha256_hex h;
	int ret = scimg_int_sha256_wait(b->srcjob, h);

	b->srcjob = NULL;
	scimg_image_close(b->srcimg);
	b->srcimg = NULL;
	if (ret < 0)
		return ret;
	json_object_object_add(src, "sha256", json_object_new_string(h));
	return 0;
}

/* the copy's and the guest fix's progress, without their own "done";
 * the copy's numbers are kept for the phases that follow */
static void relay(void *opaque, const struct scimg_progress *p)
{
	struct relay *r = opaque;

	if (!p->steps) {
		r->last = *p;
		r->last.size = sizeof(r->last);
	}
	if (strcmp(p->phase, "done") != 0)
		r->o->progress_ex(r->o->progress_opaque, p);
}

static void relay_phase(struct relay *r, const char *phase)
{
	struct scimg_progress p = r->last;

	if (!r->o->progress_ex)
		return;
	p.phase = phase;
	p.step = p.steps = 0;
	r->o->progress_ex(r->o->progress_opaque, &p);
}

static int working_disk(struct build *b)
{
	struct scimg_convert_opts co = *b->o;

	if (b->o->progress_ex) {
		co.progress_ex = relay;
		co.progress_opaque = &b->relay;
	}
	co.dst = b->workdisk;
	co.dst_format = b->disk_format;
	co.options = NULL;
	/* a temporary file that the appliance rewrites and the tar copies:
	 * only the package is flushed (before its rename) */
	co.no_sync = 1;
	if (strcmp(b->disk_format, "qcow2") != 0)
		co.compress = 0;
	return scimg_convert(b->ctx, &co);
}

/* inject-drivers on the working disk: the changes, in descriptor form,
 * go to CHANGES. */
static int fix_guest(struct build *b, json_object *changes)
{
	struct scimg_bootfix_opts bo;
	json_object *report = NULL, *ch;
	size_t i;
	int ret;

	memset(&bo, 0, sizeof(bo));
	bo.size = sizeof(bo);
	bo.drivers = SCIMG_BOOTFIX_DRV_ALL;
	bo.partition = 1; /* a partitionless filesystem (old AMI) gets a disk */
	if (b->o->progress_ex) {
		bo.progress_ex = relay;
		bo.progress_opaque = &b->relay;
	}
	/* one appliance: inject-drivers describes the fixed guest too */
	ret = scimg_int_bootfix_run(b->ctx, b->workdisk, b->disk_format, &bo, &report, &b->facts);
	if (ret < 0) {
		scimg_int_err_prefix(b->ctx, "inject-drivers");
		json_object_put(report);
		return ret;
	}
	/* bootfix change {what, change} -> descriptor change {kind, path?, text} */
	ch = jget(report, "changes");
	for (i = 0; ch && i < json_object_array_length(ch); i++) {
		json_object *c = json_object_array_get_idx(ch, i), *o;
		const char *what = jget(c, "what") ? json_object_get_string(jget(c, "what")) : "";
		const char *text = jget(c, "change") ? json_object_get_string(jget(c, "change")) : "";
		char kind[64];
		size_t k;

		o = json_object_new_object();
		if (what[0] == '/') {
			json_object_object_add(o, "kind", json_object_new_string("file"));
			json_object_object_add(o, "path", json_object_new_string(what));
		} else {
			snprintf(kind, sizeof(kind), "%s", *what ? what : "guest");
			for (k = 0; kind[k]; k++)
				if (kind[k] == ' ')
					kind[k] = '-';
			json_object_object_add(o, "kind", json_object_new_string(kind));
		}
		json_object_object_add(o, "text", json_object_new_string(text));
		json_object_array_add(changes, o);
	}
	json_object_put(report);
	return 0;
}

/* The fixed disk's entry; its content digest is started in a thread of its
 * own (b->contentjob), its member digest comes from the tar copy. */
static int disk_facts(struct build *b, json_object *disks)
{
	json_object *d = json_object_new_object();
	char member[32];
	struct stat st;
	int ret;

	json_object_array_add(disks, d);
	snprintf(member, sizeof(member), "disk0.%s", b->disk_format);
	if ((ret = scimg_image_open(b->ctx, b->workdisk, b->disk_format, &b->diskimg)) < 0)
		return ret;
	if (stat(b->workdisk, &st) < 0)
		return scimg_int_err(b->ctx, -errno, "'%s': %s", b->workdisk, strerror(errno));
	json_object_object_add(d, "index", json_object_new_int(0));
	json_object_object_add(d, "member", json_object_new_string(member));
	json_object_object_add(d, "format", json_object_new_string(b->disk_format));
	json_object_object_add(d, "virtual-size", json_object_new_uint64(b->diskimg->size));
	json_object_object_add(d, "content-sha256", json_object_new_string(DIGEST_PENDING));
	json_object_object_add(d, "member-size", json_object_new_uint64((uint64_t)st.st_size));
	json_object_object_add(d, "member-sha256", json_object_new_string(DIGEST_PENDING));
	return scimg_int_sha256_image_start(b->diskimg, &b->contentjob);
}

static int content_digest_done(struct build *b, json_object *disk)
{
	scimg_sha256_hex h;
	int ret = scimg_int_sha256_wait(b->contentjob, h);

	b->contentjob = NULL;
	scimg_image_close(b->diskimg);
	b->diskimg = NULL;
	if (ret < 0)
		return ret;
	json_object_object_add(disk, "content-sha256", json_object_new_string(h));
	return 0;
}

static char *make_xlcfg(struct build *b, const char *name, json_object *boot)
{
	json_object *methods = jget(boot, "methods");
	int pygrub = 0, pvgrub2 = 0;
	size_t i;
	char *s = NULL;

	for (i = 0; methods && i < json_object_array_length(methods); i++) {
		json_object *m = json_object_array_get_idx(methods, i);
		const char *l = jget(m, "loader") ? json_object_get_string(jget(m, "loader")) : "";
		if (!strcmp(l, "pygrub"))
			pygrub = 1;
		else if (!strcmp(l, "pvgrub2"))
			pvgrub2 = 1;
	}
	if (asprintf(&s,
		     "# xl.cfg - Xen domain configuration of the Supercloud image '%s'\n"
		     "# written by scimg %s; use it after 'tar xf' of the image, beside disk0\n"
		     "name = \"%s\"\n"
		     "type = \"pv\"\n"
		     "%s"
		     "memory = 1024\n"
		     "vcpus = 2\n"
		     "disk = [ \"format=%s, vdev=xvda, access=rw, target=disk0.%s\" ]\n"
		     "vif = [ \"bridge=xenbr0\" ]\n"
		     "on_crash = \"destroy\"\n",
		     name, SCIMG_VERSION_STRING, name,
		     (pvgrub2 && !pygrub)
			     ? "kernel = \"/usr/lib/grub-xen/grub-x86_64-xen.bin\"\n"
			     : "bootloader = \"pygrub\"\n",
		     b->disk_format, b->disk_format) < 0)
		return NULL;
	return s;
}

/* -o verify=LIST: boots of the fixed disk, separated by '+' or ',' (",," on
 * the command line): buses, firmware and the Xen loaders pygrub and pvgrub2
 * (the two an xl.cfg of the package can name). */
static int parse_verify(struct scimg_ctx *ctx, const char *s, unsigned *buses, unsigned *fw,
			unsigned *xen)
{
	char err[400];

	if (scimg_boot_parse_list(s, "+,", SCIMG_BOOT_LIST_BUS | SCIMG_BOOT_LIST_FIRMWARE |
					   SCIMG_BOOT_LIST_XEN,
				  SCIMG_BOOT_XEN_PYGRUB | SCIMG_BOOT_XEN_PVGRUB2, buses, fw, xen, err,
				  sizeof(err)) < 0)
		return scimg_int_err(ctx, -EINVAL, "sci: verify=%s: %s", s, err);
	return 0;
}

/* The descriptor's method (name, loader) a boot-test method proves, or 0
 * (xen-pv-direct, xen-pv-sci: nothing the descriptor claims). */
static int desc_method(const char *bm, const char **name, const char **loader)
{
	*loader = NULL;
	if (!strcmp(bm, "xen-pv-pygrub") || !strcmp(bm, "xen-pv-pvgrub2")) {
		*name = "xen-pv";
		*loader = bm + 7;
	} else if (!strncmp(bm, "hvm-bios-", 9)) {
		*name = "hvm-bios";
	} else if (!strncmp(bm, "hvm-uefi-", 9)) {
		*name = "hvm-uefi";
	} else {
		return 0;
	}
	return 1;
}

static json_object *find_method(json_object *methods, const char *name, const char *loader,
				size_t *idx)
{
	for (size_t i = 0; i < json_object_array_length(methods); i++) {
		json_object *m = json_object_array_get_idx(methods, i);
		const char *l = jget(m, "loader") ? json_object_get_string(jget(m, "loader")) : NULL;

		if (!strcmp(json_object_get_string(jget(m, "name")), name) &&
		    (!loader == !l) && (!loader || !strcmp(loader, l))) {
			if (idx)
				*idx = i;
			return m;
		}
	}
	return NULL;
}

/* -o verify: boot the fixed working disk (scimg_boot_test: never written,
 * QEMU runs on an overlay) and make BOOT's methods what the boots showed:
 * a method whose every boot worked is "measured" (added when the rules did
 * not predict it); a method the rules predicted that a boot could not
 * start fails the build, naming the boot and its reason, since the package
 * would claim it. */
static int verify_boots(struct build *b, json_object *boot, const char *list, unsigned buses,
			unsigned fw, unsigned xen)
{
	struct scimg_boot_opts bo;
	json_object *rep = NULL, *boots, *methods = jget(boot, "methods");
	int r;

	memset(&bo, 0, sizeof(bo));
	bo.size = sizeof(bo);
	bo.path = b->workdisk;
	bo.format = b->disk_format;
	bo.buses = buses;
	bo.firmware = fw;
	bo.xen = xen;
	bo.expect = scimg_int_opts_get(&b->opts, "verify-expect");
	relay_phase(&b->relay, "verifying");
	r = scimg_boot_test(b->ctx, &bo, &rep);
	if (r < 0) {
		scimg_int_err_prefix(b->ctx, "sci: verify=%s", list);
		return r;
	}
	if (!methods || !json_object_object_get_ex(rep, "boots", &boots)) {
		json_object_put(rep);
		return scimg_int_err(b->ctx, -EIO, "sci: verify: no boot report");
	}
	/* per descriptor method: its boots, and the first that failed */
	struct {
		const char *name, *loader;
		json_object *failed;
	} t[8];
	size_t nt = 0;

	for (size_t i = 0; i < json_object_array_length(boots); i++) {
		json_object *bt = json_object_array_get_idx(boots, i);
		const char *bm = json_object_get_string(jget(bt, "method"));
		const char *res = json_object_get_string(jget(bt, "result"));
		const char *name, *loader;
		size_t k;

		if (!bm || !desc_method(bm, &name, &loader))
			continue;
		for (k = 0; k < nt; k++)
			if (!strcmp(t[k].name, name) && !(t[k].loader ? !loader || strcmp(t[k].loader, loader)
								      : loader != NULL))
				break;
		if (k == nt) {
			if (nt == SCIMG_ARRAY_SIZE(t))
				continue; /* cannot happen: four descriptor methods */
			t[nt].name = name;
			t[nt].loader = loader;
			t[nt++].failed = NULL;
		}
		if ((!res || strcmp(res, "ok")) && !t[k].failed)
			t[k].failed = bt;
	}
	/* then once per method: all ok -> measured (added when not predicted);
	 * a failure of a predicted method -> nothing is written; a failure of
	 * a method not predicted -> nothing claimed */
	for (size_t k = 0; k < nt; k++) {
		json_object *m = find_method(methods, t[k].name, t[k].loader, NULL), *bt = t[k].failed;

		if (bt && m) {
			r = scimg_int_err(b->ctx, -EPROTO, "sci: verify: %s failed (%s) after %.0f s, "
					  "but the package would claim %s%s%s works; nothing written",
					  json_object_get_string(jget(bt, "method")),
					  json_object_get_string(jget(bt, "reason")),
					  json_object_get_double(jget(bt, "seconds")), t[k].name,
					  t[k].loader ? " with " : "", t[k].loader ? t[k].loader : "");
			json_object_put(rep);
			return r;
		}
		if (bt)
			continue;
		if (!m) {
			m = json_object_new_object();
			json_object_object_add(m, "name", json_object_new_string(t[k].name));
			if (t[k].loader)
				json_object_object_add(m, "loader", json_object_new_string(t[k].loader));
			json_object_array_add(methods, m);
		}
		json_object_object_add(m, "basis", json_object_new_string("measured"));
	}
	json_object_put(rep);
	return 0;
}

/* The final descriptor XML over PENDING, its placeholder at OFF in the
 * finished tar (checked to be there first). */
static int put_descriptor(struct build *b, uint64_t off, const char *pending,
			  const char *xml, size_t len)
{
	char *cur = malloc(len ? len : 1);
	size_t done;
	ssize_t n;
	int ret = 0;

	if (!cur)
		return scimg_int_err(b->ctx, -ENOMEM, "out of memory");
	for (done = 0; done < len; done += (size_t)n) {
		n = pread(b->outfd, cur + done, len - done, (off_t)(off + done));
		if (n < 0 && errno == EINTR) {
			n = 0;
			continue;
		}
		if (n <= 0) {
			ret = scimg_int_err(b->ctx, n < 0 ? -errno : -EIO,
					    "'%s': could not read the descriptor back: %s", b->o->dst,
					    n < 0 ? strerror(errno) : "short file");
			goto out;
		}
	}
	if (memcmp(cur, pending, len) != 0) {
		ret = scimg_int_err(b->ctx, -EIO, "'%s': the descriptor is not where it was written",
				    b->o->dst);
		goto out;
	}
	for (done = 0; done < len; done += (size_t)n) {
		n = pwrite(b->outfd, xml + done, len - done, (off_t)(off + done));
		if (n < 0 && errno == EINTR) {
			n = 0;
			continue;
		}
		if (n <= 0) {
			ret = scimg_int_err(b->ctx, n < 0 ? -errno : -EIO,
					    "'%s': write error at offset %llu: %s", b->o->dst,
					    (unsigned long long)(off + done),
					    n < 0 ? strerror(errno) : "nothing written");
			goto out;
		}
	}
out:
	free(cur);
	return ret;
}

int scimg_int_sci_convert(struct scimg_ctx *ctx, const struct scimg_convert_opts *o)
{
	struct build b;
	struct sci_tar_writer *w = NULL;
	json_object *d, *src, *guest, *boot, *disks, *files, *changes, *f;
	const char *gmode, *key, *cert, *v, *verify;
	unsigned vbuses = 0, vfw = 0, vxen = 0;
	char *name = NULL, *xml = NULL, *xl = NULL, created[32];
	uint8_t *sig = NULL;
	size_t xlen = 0, siglen = 0;
	scimg_sha256_hex h, copied;
	uint64_t copied_size, desc_off = 0;
	char *pending = NULL;
	size_t plen = 0;
	json_object *d0;
	int ret;

	memset(&b, 0, sizeof(b));
	b.ctx = ctx;
	b.o = o;
	b.outfd = -1;
	b.relay.o = o;
	b.relay.last.size = sizeof(b.relay.last);
	b.relay.last.phase = "copying";
	if ((ret = scimg_int_opts_parse(ctx, o->options, sci_create_opts, "sci", &b.opts)) < 0)
		goto out;
	gmode = scimg_int_opts_get(&b.opts, "guest");
	if (!gmode)
		gmode = "fix";
	if (strcmp(gmode, "fix") && strcmp(gmode, "inspect") && strcmp(gmode, "skip")) {
		ret = scimg_int_err(ctx, -EINVAL, "sci: guest=%s: expected fix, inspect or skip", gmode);
		goto out;
	}
	key = scimg_int_opts_get(&b.opts, "sign-key");
	cert = scimg_int_opts_get(&b.opts, "sign-cert");
	if (!key != !cert) {
		ret = scimg_int_err(ctx, -EINVAL, "sci: sign-key and sign-cert go together");
		goto out;
	}
	b.disk_format = scimg_int_opts_get(&b.opts, "disk-format");
	if (!b.disk_format) {
		const struct scimg_format *q = scimg_int_format_find("qcow2");
		b.disk_format = q && q->create ? "qcow2" : "raw";
	}
	if (strcmp(b.disk_format, "qcow2") && strcmp(b.disk_format, "raw")) {
		ret = scimg_int_err(ctx, -EINVAL, "sci: disk-format=%s: expected qcow2 or raw",
				    b.disk_format);
		goto out;
	}
	if (!scimg_int_format_find(b.disk_format) || !scimg_int_format_find(b.disk_format)->create) {
		ret = scimg_int_err(ctx, -ENOTSUP, "sci: this build cannot write %s disks",
				    b.disk_format);
		goto out;
	}
	/* -o verify: checked before anything is copied */
	verify = scimg_int_opts_get(&b.opts, "verify");
	if (verify && !strcmp(gmode, "skip")) {
		ret = scimg_int_err(ctx, -EINVAL, "sci: verify= needs the guest (not guest=skip)");
		goto out;
	}
	if (verify && (ret = parse_verify(ctx, verify, &vbuses, &vfw, &vxen)) < 0)
		goto out;
	if (scimg_int_opts_get(&b.opts, "verify-expect")) {
		regex_t re;

		if (!verify) {
			ret = scimg_int_err(ctx, -EINVAL, "sci: verify-expect= goes with verify=");
			goto out;
		}
		if (regcomp(&re, scimg_int_opts_get(&b.opts, "verify-expect"), REG_EXTENDED | REG_NOSUB)) {
			ret = scimg_int_err(ctx, -EINVAL, "sci: verify-expect=%s is not a POSIX extended "
					    "regular expression", scimg_int_opts_get(&b.opts, "verify-expect"));
			goto out;
		}
		regfree(&re);
	}
	v = scimg_int_opts_get(&b.opts, "name");
	name = v ? strdup(v) : default_name(o->dst);
	if (!name) {
		ret = scimg_int_err(ctx, -ENOMEM, "out of memory");
		goto out;
	}
	if (!name_ok(name)) {
		ret = scimg_int_err(ctx, -EINVAL,
				    "sci: name '%s' must be 1..64 characters from A-Z a-z 0-9 . _ - +",
				    name);
		goto out;
	}

	b.desc = d = json_object_new_object();
	json_object_object_add(d, "schema-version", json_object_new_int(SCI_SCHEMA_VERSION));
	json_object_object_add(d, "name", json_object_new_string(name));
	iso_time(created, sizeof(created));
	json_object_object_add(d, "created", json_object_new_string(created));
	f = json_object_new_object();
	json_object_object_add(f, "name", json_object_new_string("scimg"));
	json_object_object_add(f, "version", json_object_new_string(SCIMG_VERSION_STRING));
	json_object_object_add(d, "creator", f);
	src = json_object_new_object();
	json_object_object_add(d, "source", src);
	changes = json_object_new_array();
	disks = json_object_new_array();
	files = json_object_new_array();

	relay_phase(&b.relay, "source-digest");
	if ((ret = source_facts(&b, src)) < 0)
		goto out_arrays;
	if ((ret = make_workdir(&b)) < 0)
		goto out_arrays;
	if ((ret = working_disk(&b)) < 0)
		goto out_arrays;
	if (!strcmp(gmode, "fix") && (ret = fix_guest(&b, changes)) < 0)
		goto out_arrays;
	if (strcmp(gmode, "skip") != 0) {
		json_object *facts = NULL;
		struct scimg_guest_opts go = { 0 };
		json_object *gi;
		if (b.facts) {
			facts = b.facts;
			b.facts = NULL;
		} else if ((ret = scimg_int_guest_check(ctx, b.workdisk, b.disk_format, &go, &facts)) < 0) {
			goto out_arrays;
		}
		guest = json_object_get(jget(facts, "guest"));
		boot = json_object_get(jget(facts, "boot"));
		gi = jget(guest, "os");
		json_object_put(facts);
		if (!gi) {
			json_object_put(guest);
			json_object_put(boot);
			ret = scimg_int_err(ctx, -EINVAL,
					    "'%s': no operating system found on the disk; use -o guest=skip to package it as a data disk",
					    o->src);
			goto out_arrays;
		}
		/* drop what the descriptor has no place for */
		gi = jget(guest, "kernels");
		for (size_t i = 0; gi && i < json_object_array_length(gi); i++)
			json_object_object_del(json_object_array_get_idx(gi, i), "initramfs-error");
	} else {
		guest = json_object_new_object();
		json_object_object_add(guest, "inspected", json_object_new_boolean(0));
		boot = json_object_new_object();
		json_object_object_add(boot, "methods", json_object_new_array());
	}
	if (verify && (ret = verify_boots(&b, boot, verify, vbuses, vfw, vxen)) < 0) {
		json_object_put(guest);
		json_object_put(boot);
		goto out_arrays;
	}
	json_object_object_add(d, "guest", guest);
	json_object_object_add(d, "boot", boot);
	json_object_object_add(d, "disks", disks);
	json_object_object_add(d, "files", files);
	json_object_object_add(d, "changes", changes);

	if ((ret = disk_facts(&b, disks)) < 0)
		goto out;
	d0 = json_object_array_get_idx(disks, 0);
	xl = make_xlcfg(&b, name, boot);
	if (!xl) {
		ret = scimg_int_err(ctx, -ENOMEM, "out of memory");
		goto out;
	}
	if ((ret = scimg_int_sha256_buf(ctx, xl, strlen(xl), h)) < 0)
		goto out;
	f = json_object_new_object();
	json_object_object_add(f, "member", json_object_new_string(SCI_XLCFG));
	json_object_object_add(f, "size", json_object_new_uint64(strlen(xl)));
	json_object_object_add(f, "sha256", json_object_new_string(h));
	json_object_array_add(files, f);
	/* The descriptor with the digests still to come as DIGEST_PENDING:
	 * the final one is as long, and is written over it once they are
	 * known.  Meanwhile the disk member is copied in, and hashed as it
	 * is (its member-sha256: the bytes the package holds). */
	if ((ret = scimg_int_desc_write(ctx, d, &pending, &plen)) < 0)
		goto out;

	/* the package */
	relay_phase(&b.relay, "packaging");
	if ((ret = scimg_int_tar_writer_new(ctx, b.outfd, o->dst, build_time(), &w)) < 0)
		goto out;
	if ((ret = scimg_int_tar_add_buffer_at(w, SCI_DESCRIPTOR, pending, plen, &desc_off)) < 0)
		goto out;
	ret = scimg_int_tar_add_file(w, json_object_get_string(jget(d0, "member")),
				     b.workdisk, &copied_size, copied);
	if (ret < 0)
		goto out;
	if (copied_size != json_object_get_uint64(jget(d0, "member-size"))) {
		ret = scimg_int_err(ctx, -EIO, "'%s' changed while it was packaged", b.workdisk);
		goto out;
	}
	json_object_object_add(d0, "member-sha256", json_object_new_string(copied));
	if ((ret = scimg_int_tar_add_buffer(w, SCI_XLCFG, xl, strlen(xl))) < 0)
		goto out;
	if ((ret = source_digest_done(&b, src)) < 0 || (ret = content_digest_done(&b, d0)) < 0)
		goto out;
	if ((ret = scimg_int_desc_write(ctx, d, &xml, &xlen)) < 0)
		goto out;
	if (xlen != plen) {
		ret = scimg_int_err(ctx, -EIO, "sci: the descriptor changed length (%zu, then %zu bytes)",
				    plen, xlen);
		goto out;
	}
	if (key && (ret = scimg_int_sign(ctx, xml, xlen, key, cert, &sig, &siglen)) < 0)
		goto out;
	if (sig && (ret = scimg_int_tar_add_buffer(w, SCI_SIGNATURE, sig, siglen)) < 0)
		goto out;
	ret = scimg_int_tar_writer_close(w);
	w = NULL;
	if (ret < 0)
		goto out;
	if ((ret = put_descriptor(&b, desc_off, pending, xml, xlen)) < 0)
		goto out;
	if (fdatasync(b.outfd) < 0 && errno != EINVAL) {
		ret = scimg_int_err(ctx, -errno, "'%s': could not flush: %s", o->dst, strerror(errno));
		goto out;
	}
	if (close(b.outfd) < 0) {
		b.outfd = -1;
		ret = scimg_int_err(ctx, -errno, "'%s': %s", o->dst, strerror(errno));
		goto out;
	}
	b.outfd = -1;
	if ((ret = scimg_int_check_cancel(ctx)) < 0)
		goto out;
	if (rename(b.tmpout, o->dst) < 0) {
		ret = scimg_int_err(ctx, -errno, "could not rename into '%s': %s", o->dst,
				    strerror(errno));
		goto out;
	}
	free(b.tmpout);
	b.tmpout = NULL;
	relay_phase(&b.relay, "done");
	ret = 0;
	goto out;
out_arrays:
	json_object_put(changes);
	json_object_put(disks);
	json_object_put(files);
out:
	scimg_int_tar_writer_abort(w);
	cleanup(&b, 0);
	free(name);
	free(xml);
	free(pending);
	free(xl);
	free(sig);
	return ret;
}
